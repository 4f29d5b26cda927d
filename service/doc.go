// Package service holds the rules of DESIGN.md: authentication of tokens,
// authorization through the policy engine, the token lifecycle, accounts,
// sessions and login throttling, projects and applications, audit and the
// reaper. It talks to storage only through gatehouse.Store and keeps the
// request hot path (parse → cache → constant-time compare → policy) free of
// I/O: tokens, accounts and the policy engine live in memory, and every
// write that changes them updates the cache before it returns.
package service
