// Package cli holds the gatehouse command tree (cobra): every sub-command
// but `server`, built on the typed API client in package client.
package cli
