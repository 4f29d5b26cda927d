// Package client is the typed Go client of Gatehouse's HTTP API.
// The CLI is built on it and end-to-end tests drive the server through it.
//
// Every method takes a context first and speaks in the domain types of
// package gatehouse. A non-2xx answer comes back as *gatehouse.Error with
// the server's code and message, so callers branch with gatehouse.IsCode
// exactly as the server does. The client never puts a credential into an
// error, a URL or a log line: tokens travel only in the Authorization header
// (or, for introspection, in the request body).
package client
