package storetest

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
)

// Run runs the conformance suite. open must return a new, empty store for
// each call and close it in t.Cleanup. The sub-tests run in parallel, each
// on its own stores, so open must be safe to call from several goroutines.
//
// The suite runs twice: on the stores as opened ("direct"), and on the same
// stores wrapped by TxTwice ("tx-twice"), which runs every transaction
// function once in a transaction that is rolled back before running it for
// real. Every case must pass both ways: a rolled-back attempt leaves no
// trace, which is what lets a backend retry a transaction.
func Run(t *testing.T, open func(t *testing.T) gatehouse.Store) {
	t.Helper()
	modes := []struct {
		name string
		open func(t *testing.T) gatehouse.Store
	}{
		{"direct", open},
		{"tx-twice", func(t *testing.T) gatehouse.Store { return TxTwice(open(t)) }},
	}
	var c counts
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) { runCases(t, m.open, &c) })
	}
	t.Logf("conformance: %d cases, each run directly and with every transaction run twice: %d runs, %d failed, %d skipped",
		len(conformanceCases), c.runs.Load(), c.failed.Load(), c.skipped.Load())
}

// counts are the outcomes of the cases, for Run's summary.
type counts struct{ runs, failed, skipped atomic.Int64 }

// conformanceCases is the suite, one entry per storage behaviour.
var conformanceCases = []struct {
	name string
	fn   func(t *testing.T, open func(t *testing.T) gatehouse.Store)
}{
	{"Ping", testPing},
	{"PingBesideWriters", testPingBesideWriters},
	{"Accounts", testAccounts},
	{"AccountListSortedByName", testAccountList},
	{"AccountDeleteKeepsTokens", testAccountDeleteKeepsTokens},
	{"SSOAccounts", testSSOAccounts},
	{"Tokens", testTokens},
	{"TokenFilterList", testTokenFilterList},
	{"TokenFilterDelete", testTokenFilterDelete},
	{"SetTokenExpiry", testSetTokenExpiry},
	{"ForEachToken", testForEachToken},
	{"ForEachTokenStopsOnError", testForEachTokenStops},
	{"TouchTokens", testTouchTokens},
	{"Projects", testProjects},
	{"Applications", testApplications},
	{"ApplicationNamesUniqueAcrossProjects", testApplicationNamesUnique},
	{"Operations", testOperations},
	{"DeleteApplicationDeletesOperations", testDeleteApplicationDeletesOperations},
	{"RBAC", testRBAC},
	{"EventIDsIncrease", testEventIDs},
	{"EventFilter", testEventFilter},
	{"EventPaging", testEventPaging},
	{"PruneEvents", testPruneEvents},
	{"ChainAppends", testChainAppends},
	{"ChainPrune", testChainPrune},
	{"ChainConcurrentAppends", testChainConcurrentAppends},
	{"RequestsByHour", testRequestsByHour},
	{"CountedEvents", testCountedEvents},
	{"TxRollback", testTxRollback},
	{"TxReadsOwnWrites", testTxReadsOwnWrites},
	{"ErrorCodes", testErrorCodes},
	{"TimesRoundTrip", testTimes},
	{"EmptySlicesNotNil", testEmptySlices},
	{"ConcurrentWriters", testConcurrentWriters},
	{"ConcurrentReadModifyWrite", testConcurrentReadModifyWrite},
	{"TxUsableAfterContractErrors", testTxUsableAfterContractErrors},
	{"ViewSeesCommitted", testViewSeesCommitted},
	{"ViewSnapshot", testViewSnapshot},
	{"ViewBesideOpenTx", testViewBesideOpenTx},
	{"WriteInViewFails", testWriteInViewFails},
	{"TimesOutOfRangeClamp", testTimesClamp},
	{"TextThatIsNotUTF8", testTextNotUTF8},
	{"ChangeSeqsFollowCommits", testChangeSeqsFollowCommits},
	{"ChangesRolledBack", testChangesRolledBack},
	{"ChangesSincePaging", testChangesSincePaging},
	{"ChangeHead", testChangeHead},
	{"PruneChanges", testPruneChanges},
	{"RecordChangesEmpty", testRecordChangesEmpty},
	{"ConcurrentChangeRecorders", testConcurrentChangeRecorders},
	{"LoginAttempts", testLoginAttempts},
	{"ClearLoginFailures", testClearLoginFailures},
	{"PruneLoginAttempts", testPruneLoginAttempts},
	{"ConcurrentLoginReservations", testConcurrentLoginReservations},
	{"TrustPolicies", testTrustPolicies},
	{"DeleteTokensCreatedBy", testDeleteTokensCreatedBy},
	{"ExchangeReplays", testExchangeReplays},
	{"ConcurrentExchangeReplays", testConcurrentExchangeReplays},
	{"TrustWritesInViewFail", testTrustWritesInViewFail},
	{"Webhooks", testWebhooks},
	{"Notifications", testNotifications},
	{"ConcurrentEnqueue", testConcurrentEnqueue},
	{"TokenLifecycleFields", testTokenLifecycleFields},
	{"Rotations", testRotations},
}

// runCases runs every case in parallel and counts the runs and failures.
func runCases(t *testing.T, open func(t *testing.T) gatehouse.Store, c *counts) {
	for _, tc := range conformanceCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c.runs.Add(1)
			t.Cleanup(func() {
				switch {
				case t.Failed():
					c.failed.Add(1)
				case t.Skipped():
					c.skipped.Add(1)
				}
			})
			tc.fn(t, open)
		})
	}
}

// t0 is the suite's fixed clock. It has nanoseconds, so a backend that
// rounds to micro- or milliseconds fails the round-trip checks.
var t0 = time.Date(2025, 3, 14, 15, 9, 26, 535897932, time.UTC)

// at returns t0 plus d.
func at(d time.Duration) time.Time { return t0.Add(d) }

// inTx runs fn in one transaction and fails the test if it returns an error.
func inTx(t *testing.T, s gatehouse.Store, fn func(tx gatehouse.Tx) error) {
	t.Helper()
	if err := s.Tx(t.Context(), fn); err != nil {
		t.Fatalf("Tx: %v", err)
	}
}

// read runs one read in a transaction and returns its result.
func read[T any](t *testing.T, s gatehouse.Store, fn func(tx gatehouse.Tx) (T, error)) T {
	t.Helper()
	var v T
	inTx(t, s, func(tx gatehouse.Tx) (err error) {
		v, err = fn(tx)
		return err
	})
	return v
}

// wantCode fails the test unless err carries code.
func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	if got := gatehouse.ErrorCode(err); got != code {
		t.Errorf("%s: got error %v (code %q), want code %q", what, err, got, code)
	}
}

// equal fails the test unless got and want are deeply equal.
func equal(t *testing.T, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got %s\nwant %s", what, show(got), show(want))
	}
}

// show renders a value for a failure message: JSON with the fields that
// JSON leaves out (hashes) visible through %+v as well.
func show(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%+v", v)
	}
	return fmt.Sprintf("%s %+v", b, v)
}

// ---- fixtures

func account(name string) gatehouse.Account {
	return gatehouse.Account{
		Name:         name,
		Enabled:      true,
		Capabilities: []gatehouse.Capability{gatehouse.CapLogin, gatehouse.CapAPIKey},
		Groups:       []string{"dev", "ops"},
		CreatedAt:    t0,
		PasswordHash: []byte("$2a$10$not-a-real-bcrypt-hash-of-" + name),
	}
}

// token returns an api token of alice issued at t0 that expires 12h later;
// opts adjust it.
func token(id string, opts ...func(*gatehouse.Token)) gatehouse.Token {
	k := gatehouse.Token{
		ID:        id,
		Name:      "token " + id,
		Kind:      gatehouse.KindAPI,
		Account:   "alice",
		Scopes:    []gatehouse.Scope{{Resource: "applications", Action: "get", Object: "web/*"}},
		IssuedAt:  t0,
		ExpiresAt: at(12 * time.Hour),
		CreatedBy: "alice",
		Hash:      hash(id),
	}
	for _, o := range opts {
		o(&k)
	}
	return k
}

// hash returns a SHA-256 like the service stores: raw bytes, not text, so
// a backend that stores hashes as strings fails the round trip.
func hash(id string) []byte {
	h := sha256.Sum256([]byte(id))
	return h[:]
}

func project(name string) gatehouse.Project {
	return gatehouse.Project{
		Name:        name,
		Description: "project " + name,
		Roles: []gatehouse.ProjectRole{{
			Name:        "deployer",
			Description: "deploys",
			Policies: []string{
				"p, proj:" + name + ":deployer, applications, sync, " + name + "/*, allow",
				"p, proj:" + name + ":deployer, applications, get, " + name + "/*, allow",
			},
			Groups: []string{"ci"},
		}, {
			Name:        "viewer",
			Description: "reads",
			Policies:    []string{"p, proj:" + name + ":viewer, applications, get, " + name + "/*, allow"},
			Groups:      []string{"dev", "qa"},
		}},
		CreatedAt: t0,
	}
}

func application(name, project string) gatehouse.Application {
	return gatehouse.Application{
		Name:    name,
		Project: project,
		Spec: gatehouse.AppSpec{
			RepoURL:        "https://git.example.com/" + project + ".git",
			Path:           "deploy/" + name,
			TargetRevision: "main",
			Destination:    gatehouse.AppDestination{Server: "https://kubernetes.default.svc", Namespace: project},
		},
		Status: gatehouse.AppStatus{
			Sync:       "Synced",
			Health:     "Healthy",
			Revision:   "0123456789abcdef",
			Message:    "ok",
			ReportedAt: at(time.Minute),
		},
		CreatedAt: t0,
	}
}

func operation(id, app string, created time.Time, state string) gatehouse.Operation {
	return gatehouse.Operation{
		ID:          id,
		Application: app,
		State:       state,
		Revision:    "v1.2.3",
		Prune:       true,
		DryRun:      false,
		RequestedBy: "alice",
		CreatedAt:   created,
		UpdatedAt:   created,
		Message:     "queued",
	}
}

// ids returns the ids of tokens, in order.
func ids(ts []gatehouse.Token) []string {
	out := []string{}
	for _, k := range ts {
		out = append(out, k.ID)
	}
	return out
}

// testPing: on a healthy store Ping (a write probe) and Check succeed,
// again and again, and the probe's write is its own: no domain data or
// audit event changes.
func testPing(t *testing.T, open func(t *testing.T) gatehouse.Store) {
	s := open(t)
	seed(t, s)
	before := snap(t, s)
	for i := range 3 {
		if err := s.Ping(t.Context()); err != nil {
			t.Fatalf("Ping %d: got %v, want nil", i+1, err)
		}
		if err := s.Check(t.Context()); err != nil {
			t.Fatalf("Check %d: got %v, want nil", i+1, err)
		}
	}
	equal(t, "store after Ping", snap(t, s), before)
}

// testPingBesideWriters: Ping queues with concurrent writers rather than
// failing with a lock conflict, and they with it.
func testPingBesideWriters(t *testing.T, open func(t *testing.T) gatehouse.Store) {
	s := open(t)
	const n = 8
	errs := make(chan error, 2*n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs <- s.Ping(t.Context()) })
		wg.Go(func() {
			errs <- s.Tx(t.Context(), func(tx gatehouse.Tx) error {
				return tx.CreateAccount(t.Context(), account(fmt.Sprintf("user%d", i)))
			})
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("Ping or Tx beside each other: %v", err)
		}
	}
	if got := len(read(t, s, func(tx gatehouse.Tx) ([]gatehouse.Account, error) { return tx.ListAccounts(t.Context()) })); got != n {
		t.Errorf("accounts: got %d, want %d", got, n)
	}
}
