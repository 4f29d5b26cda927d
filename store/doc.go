// Package store holds Gatehouse's storage backends and their shared
// conformance suite. The interface itself is gatehouse.Store; storage is
// dumb: no permission checks, no business rules beyond integrity.
//
//   - storetest: the conformance suite every backend must pass;
//   - sqlite: the embedded default backend (pure Go, one file);
//   - postgres: PostgreSQL, for several replicas on one database.
package store
