// Package storetest is the conformance suite for gatehouse.Store. Every
// backend runs it from its own tests:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) gatehouse.Store {
//			s := openFresh(t)
//			t.Cleanup(func() { s.Close() })
//			return s
//		})
//	}
//
// Each storage behaviour is tested here once, so the backends cannot drift
// apart. Beyond the doc comments of gatehouse.Store the suite fixes what the
// layers above rely on: lists of accounts and projects are sorted by name;
// list-valued fields (capabilities, groups, scopes, roles, policies) and
// empty results come back as non-nil empty slices, so JSON shows [];
// times come back as the same instant, to the nanosecond, in UTC;
// TouchTokens only moves lastUsedAt forward; event ids are never reused,
// even after a prune; creating an operation for an unknown application is
// ENOTFOUND; and DeleteAccount does not delete the account's tokens (the
// service does that in the same transaction, auditing each one).
package storetest
