// Package cli holds the gatehouse command tree (cobra): every sub-command
// but `server`, built on the typed API client in package client.
//
// The verbs and flags mirror Argo CD's CLI (login, context, account
// generate-token, proj role create-token, app sync, ...) so that its users'
// habits carry over. The whole tree runs in-process through Main or Run with
// its own standard streams, environment lookup and clock, and keeps no
// global state, so tests (and the end-to-end suite) drive it like a user
// would.
//
// Connection settings come from flags, then GATEHOUSE_* environment
// variables, then the current context of the config file, a YAML file kept
// with mode 0600 because it holds session tokens.
package cli
