// Package service holds Gatehouse's rules: authentication of tokens,
// authorization through the policy engine, the token lifecycle, accounts,
// sessions and login throttling, projects and applications, audit, the
// reaper and webhook notifications (an outbox written in the transaction
// of each change it reports; notify.go). It talks to storage only through gatehouse.Store and keeps the
// request hot path (parse → cache → constant-time compare → policy) free of
// I/O: tokens, accounts and the policy engine live in memory. Every write
// goes through Service.write, and one apply function changes memory after
// the store commits, before the call returns. docs/security.md states the
// rules these keep.
package service
