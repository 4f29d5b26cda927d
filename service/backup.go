package service

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse"
)

// The actors of the offline commands' audit events: no account acts, an
// operator with the data directory does.
const (
	actorRestore       = "restore"
	actorResetPassword = "reset-admin-password"
)

// errNoSnapshot is the answer of a store that the API cannot copy.
var errNoSnapshot = gatehouse.Errorf(gatehouse.EPRECONDITION,
	"this server's store is PostgreSQL, which is not backed up through the API: back up the database with pg_dump (docs/operations.md, \"Backup and restore\")")

// backupObject is the settings object that taking a backup needs update
// on: settings, update, backup. A backup holds every password hash, every
// token's hash and the whole policy, so it needs a permission of its own:
// one that names it, or covers every settings object (role:admin's). It
// is not "*": the policy and the scopes match an object as a string, so
// a pattern such as "?" would cover the string "*" and nothing else.
const backupObject = "backup"

// backupRetry is the Retry-After of a backup refused while another runs.
const backupRetry = time.Minute

// Backup takes a consistent copy of the whole store, as of one commit, for
// a caller with settings, update, backup (backupObject): the copy holds
// every account's password hash and every token's hash, so it is the
// whole server. It is for the embedded SQLite store; a PostgreSQL store is
// backed up with pg_dump (EPRECONDITION). One backup at a time: while one
// is taken or handed out (until it is closed) another is refused,
// ETHROTTLED, for the disk space and the work each costs.
//
// The copy is recorded in the audit trail (actor, address, size and
// SHA-256) and committed before it is handed out: if the event cannot be
// written, there is no copy. A restore over this store later checks the
// file against that record. The caller reads the copy and closes it,
// which removes it.
func (s *Service) Backup(ctx context.Context, p *Principal, remoteAddr string) (*gatehouse.Backup, error) {
	if err := s.authorize(p, "settings", "update", backupObject); err != nil {
		return nil, err
	}
	sn, ok := s.store.(gatehouse.Snapshotter)
	if !ok {
		return nil, errNoSnapshot
	}
	if !s.backupBusy.CompareAndSwap(false, true) {
		return nil, &gatehouse.Error{Code: gatehouse.ETHROTTLED, RetryAfter: backupRetry,
			Message: "another backup of this server is under way, and it takes one at a time: try again once it is done"}
	}
	release := sync.OnceFunc(func() { s.backupBusy.Store(false) })
	snap, err := sn.Snapshot(ctx)
	if err != nil {
		release()
		return nil, err
	}
	fail := func(err error) (*gatehouse.Backup, error) {
		snap.Close()
		release()
		return nil, err
	}
	b := &gatehouse.Backup{Snapshot: releasing{Snapshot: snap, release: release}, TakenAt: s.now().UTC()}
	h := sha256.New()
	if _, err := io.Copy(h, snap); err != nil {
		return fail(gatehouse.Internal(fmt.Errorf("backup: read the snapshot: %w", err)))
	}
	if _, err := snap.Seek(0, io.SeekStart); err != nil {
		return fail(gatehouse.Internal(fmt.Errorf("backup: rewind the snapshot: %w", err)))
	}
	h.Sum(b.SHA256[:0])
	ev := s.event(p, gatehouse.EventStoreBackup, "settings", "update", backupObject, backupDetail(snap.Size(), b.SHA256))
	ev.Account, ev.RemoteAddr = p.account, remoteAddr
	// Recorded as p's write, decided again in its transaction
	// (callerCurrent): a caller disabled, revoked or demoted since it was
	// authorized gets no copy.
	if err := s.write(ctx, p, func(tx gatehouse.Tx, _ *change) error {
		return tx.AppendEvents(ctx, []gatehouse.Event{ev})
	}); err != nil {
		return fail(err)
	}
	return b, nil
}

// releasing is a snapshot that lets the next backup start once closed.
type releasing struct {
	gatehouse.Snapshot
	release func()
}

func (r releasing) Close() error {
	err := r.Snapshot.Close()
	r.release()
	return err
}

// backupDetail is the store.backup event's detail; recordedSHA256 reads
// the digest back from it.
func backupDetail(size int64, sum [32]byte) string {
	return fmt.Sprintf("SQLite snapshot, %d bytes, sha256 %x", size, sum)
}

func recordedSHA256(detail string) ([32]byte, bool) {
	var sum [32]byte
	_, rest, ok := strings.Cut(detail, "sha256 ")
	if !ok || len(rest) < 2*len(sum) {
		return sum, false
	}
	if _, err := hex.Decode(sum[:], []byte(rest[:2*len(sum)])); err != nil {
		return sum, false
	}
	return sum, true
}

// storeState is everything of a store that a restore compares.
type storeState struct {
	accounts map[string]gatehouse.Account
	tokens   map[string]gatehouse.Token
	trust    map[string]gatehouse.TrustPolicy
	replays  []gatehouse.ExchangeReplay
	rots     []gatehouse.Rotation
	rbac     gatehouse.RBAC
	hasRBAC  bool
	projects map[string]gatehouse.Project
	apps     map[string]gatehouse.Application
	ops      map[string][]gatehouse.Operation // by application
	logins   []gatehouse.LoginAttemptEntry
	eventSeq int64
	backups  []gatehouse.Event // store.backup events, newest first
}

func readState(ctx context.Context, st gatehouse.Store) (storeState, error) {
	var out storeState
	err := st.View(ctx, func(tx gatehouse.Tx) error {
		rtx, ok := tx.(gatehouse.RestoreTx)
		if !ok {
			return gatehouse.Internal(fmt.Errorf("restore: the store %T cannot be restored from or into", st))
		}
		out = storeState{accounts: map[string]gatehouse.Account{}, tokens: map[string]gatehouse.Token{}, trust: map[string]gatehouse.TrustPolicy{},
			projects: map[string]gatehouse.Project{}, apps: map[string]gatehouse.Application{}, ops: map[string][]gatehouse.Operation{}}
		accounts, err := tx.ListAccounts(ctx)
		if err != nil {
			return err
		}
		for _, a := range accounts {
			out.accounts[a.Name] = a
		}
		tokens, err := tx.ListTokens(ctx, gatehouse.TokenFilter{})
		if err != nil {
			return err
		}
		for _, t := range tokens {
			out.tokens[t.ID] = t
		}
		trust, err := tx.ListTrustPolicies(ctx)
		if err != nil {
			return err
		}
		for _, tp := range trust {
			out.trust[tp.Name] = tp
		}
		if out.replays, err = tx.ListExchangeReplays(ctx); err != nil {
			return err
		}
		if out.rots, err = tx.ListRotations(ctx); err != nil {
			return err
		}
		out.rbac, err = tx.GetRBAC(ctx)
		switch {
		case err == nil:
			out.hasRBAC = true
		case !gatehouse.IsCode(err, gatehouse.ENOTFOUND):
			return err
		}
		projects, err := tx.ListProjects(ctx)
		if err != nil {
			return err
		}
		for _, p := range projects {
			out.projects[p.Name] = p
		}
		apps, err := tx.ListApplications(ctx, "")
		if err != nil {
			return err
		}
		for _, a := range apps {
			out.apps[a.Name] = a
			if out.ops[a.Name], err = tx.ListOperations(ctx, a.Name, ""); err != nil {
				return err
			}
		}
		if out.logins, err = rtx.ListLoginAttemptEntries(ctx); err != nil {
			return err
		}
		if out.eventSeq, err = rtx.EventSeq(ctx); err != nil {
			return err
		}
		out.backups, err = tx.ListEvents(ctx, gatehouse.EventFilter{Type: gatehouse.EventStoreBackup})
		return err
	})
	return out, err
}

// sameAccount: a and b are one account (a name can be deleted and made
// again): the same name, created at the same instant.
func sameAccount(a, b gatehouse.Account) bool {
	return a.Name == b.Name && a.CreatedAt.Equal(b.CreatedAt)
}

// related reports whether the backup was taken from the store current, or
// one it descends from: the admin account, made once at the first start
// and never deleted, is the same in both. (A store without one, which no
// server has run on, is related if any account is.)
func related(backup, current storeState) bool {
	ba, ok1 := backup.accounts[gatehouse.AdminAccount]
	ca, ok2 := current.accounts[gatehouse.AdminAccount]
	if ok1 && ok2 {
		return sameAccount(ba, ca)
	}
	for name, a := range backup.accounts {
		if c, ok := current.accounts[name]; ok && sameAccount(a, c) {
			return true
		}
	}
	return false
}

// errUnrelated refuses to carry the revocations of a store the backup was
// not taken from: every token of the backup would count as revoked.
var errUnrelated = gatehouse.Errorf(gatehouse.EPRECONDITION,
	"the data directory's database is not the one this backup was taken from (their admin accounts were created at different times), so its revocations say nothing about the backup's tokens; nothing was changed. If it is a new database a server made after the old one was lost, move it out of the data directory and restore again: the restore then cannot know the revocations made after the backup")

// RestoreFrom is the backup file a restore restores: its name and
// SHA-256, for the checks and the record.
type RestoreFrom struct {
	Name   string
	SHA256 [32]byte
	// Unrecorded goes on when the replaced store records no backup with
	// this SHA-256 (a copy of a stopped server's database file, or a
	// backup older than the audit retention): the file's content is then
	// taken on trust for what the restore does not carry.
	Unrecorded bool
}

// unrecorded refuses a backup file the replaced store has no record of.
func (s *Service) unrecorded(sum [32]byte) error {
	return gatehouse.Errorf(gatehouse.EPRECONDITION,
		"no backup with this file's SHA-256 (%x) is recorded in the data directory's database (store.backup events, kept for the audit retention, %s): it may have been edited since it was taken, or be older than the retention, or a copy of a stopped server's database file; nothing was changed. Restore a backup this server recorded, or, if you know where this file comes from and that no one changed it, restore it with --unrecorded",
		sum, retentionText(s.auditRetention))
}

func retentionText(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%d days", d/(24*time.Hour))
	}
	return d.String()
}

// Restore runs on a store just restored from a backup, before any server
// uses it. It carries into it what current, the store it replaces (nil
// when the data directory held none), says, and records the restore in
// its audit trail (kept names where current is kept, for that record).
//
// Over a store, the backup file must be one that store recorded handing
// out (a store.backup event with its SHA-256), unless from.Unrecorded;
// and the restore can only take away. What the replaced store says wins
// wherever both hold a record, and wherever a record decides permissions:
//
//   - a token of the backup the replaced store no longer holds was revoked
//     (or removed once expired) after the backup: it is deleted; one it
//     holds takes its record there, with the earlier of the two expiries
//     (a rotation's grace) and the later last use;
//   - an account of the backup the replaced store no longer holds was
//     deleted after the backup (perhaps made again since: a new account of
//     the same name is another account): it is deleted with its tokens;
//     one it holds takes its state there (enabled, capabilities, groups,
//     password, SSO link), revoking what that cuts off;
//   - a trust policy deleted after the backup is deleted again, one changed
//     takes its new definition, and the tokens issued through either are
//     revoked;
//   - the RBAC settings, the projects (roles, policy lines, group
//     bindings) and the applications (which name the RBAC objects
//     <project>/<name>), with their operations, are the replaced store's:
//     those it no longer holds are deleted, those made since are made;
//   - every subject token the replaced store has recorded as exchanged
//     stays recorded, so that none is exchanged twice, and every login
//     failure it counts still counts;
//   - audit event ids go on from the replaced store's, never reused, and
//     its records of backups taken since are kept, so that those backups
//     can be restored too.
//
// What was made after the backup (accounts, tokens, trust policies) is not
// in it and is gone; the audit trail before the restore is the backup's.
// The report counts all of it.
//
// A replaced store that holds no account and no token (a server made it
// and stopped before its first start was done) has nothing to carry and
// counts as none. One the backup was not taken from, or that has no
// record of the file, is refused (EPRECONDITION) and nothing changes.
func (s *Service) Restore(ctx context.Context, current gatehouse.Store, from RestoreFrom, kept string) (gatehouse.RestoreReport, error) {
	var cur storeState
	if current != nil {
		var err error
		if cur, err = readState(ctx, current); err != nil {
			return gatehouse.RestoreReport{}, fmt.Errorf("read the replaced store: %w", err)
		}
		if len(cur.accounts) == 0 && len(cur.tokens) == 0 {
			current = nil
		}
	}
	back, err := readState(ctx, s.store)
	if err != nil {
		return gatehouse.RestoreReport{}, fmt.Errorf("read the restored store: %w", err)
	}
	var taken *gatehouse.Event
	if current != nil {
		if !related(back, cur) {
			return gatehouse.RestoreReport{}, errUnrelated
		}
		if !cur.hasRBAC {
			return gatehouse.RestoreReport{}, gatehouse.Errorf(gatehouse.EPRECONDITION,
				"the data directory's database holds accounts but no RBAC settings, which no server's database does; nothing was changed")
		}
		for i, ev := range cur.backups {
			if sum, ok := recordedSHA256(ev.Detail); ok && sum == from.SHA256 {
				taken = &cur.backups[i]
				break
			}
		}
		if taken == nil && !from.Unrecorded {
			return gatehouse.RestoreReport{}, s.unrecorded(from.SHA256)
		}
	}
	now := s.now()
	var r gatehouse.RestoreReport
	err = s.write(ctx, nil, func(tx gatehouse.Tx, c *change) error {
		r = gatehouse.RestoreReport{SHA256: from.SHA256}
		var events []gatehouse.Event
		if current != nil {
			if taken != nil {
				r.BackupTakenAt, r.BackupTakenBy = taken.Time, taken.Actor
			} else {
				r.Unrecorded = true
			}
			var err error
			if events, err = s.carry(ctx, tx, c, back, cur, now, &r); err != nil {
				return err
			}
		}
		ev := s.event(nil, gatehouse.EventStoreRestored, "settings", "update", backupObject, restoreDetail(r, from.Name, kept))
		ev.Actor = actorRestore
		return tx.AppendEvents(ctx, append(events, ev))
	})
	if err != nil {
		return gatehouse.RestoreReport{}, err
	}
	return r, nil
}

// carry applies, in tx, what the replaced store cur says of the backup's
// records (see Restore), and returns the events that record it.
func (s *Service) carry(ctx context.Context, tx gatehouse.Tx, c *change, back, cur storeState, now time.Time, r *gatehouse.RestoreReport) ([]gatehouse.Event, error) {
	rtx, ok := tx.(gatehouse.RestoreTx)
	if !ok {
		return nil, gatehouse.Internal(fmt.Errorf("restore: the store %T cannot be restored into", s.store))
	}
	r.Carried = true
	// No event id of the replaced store is handed out again: an exporter
	// that resumes or deduplicates by id would miss what comes next.
	if err := rtx.RaiseEventSeq(ctx, cur.eventSeq); err != nil {
		return nil, err
	}
	var events []gatehouse.Event
	restoring := func(evs []gatehouse.Event) []gatehouse.Event {
		for i := range evs {
			evs[i].Actor = actorRestore
		}
		return evs
	}

	// Accounts first: deleting one deletes its tokens.
	for _, name := range sortedKeys(back.accounts) {
		a := back.accounts[name]
		ca, ok := cur.accounts[name]
		if !ok || !sameAccount(a, ca) {
			if name == gatehouse.AdminAccount {
				continue // related: the same in both
			}
			if err := tx.DeleteAccount(ctx, name); err != nil {
				return nil, err
			}
			c.deleteAccount(name)
			gone, err := s.revokeTx(ctx, tx, c, nil, gatehouse.TokenFilter{Account: name}, gatehouse.EventTokenRevoked, "restore: account deleted after the backup")
			if err != nil {
				return nil, err
			}
			events = append(events, restoring(append(gone, s.event(nil, gatehouse.EventAccountChanged, "accounts", "delete", name, "restore: deleted after the backup")))...)
			r.AccountsDeleted++
			r.TokensRevoked += len(gone)
			continue
		}
		if reflect.DeepEqual(a, ca) {
			continue
		}
		if err := tx.UpdateAccount(ctx, ca); err != nil {
			return nil, err
		}
		c.putAccount(ca)
		r.AccountsUpdated++
		if a.Enabled && !ca.Enabled {
			r.AccountsDisabled++
		}
		events = append(events, restoring([]gatehouse.Event{s.event(nil, gatehouse.EventAccountChanged, "accounts", "update", name, "restore: "+accountChanges(a, ca)+" as after the backup")})...)
		for _, cut := range cutOff(a, ca) {
			gone, err := s.revokeTx(ctx, tx, c, nil, cut.filter, gatehouse.EventTokenRevoked, "restore: "+cut.why+" after the backup")
			if err != nil {
				return nil, err
			}
			events = append(events, restoring(gone)...)
			r.TokensRevoked += len(gone)
		}
	}

	// Trust policies, with the tokens issued through them.
	for _, name := range sortedKeys(back.trust) {
		tp := back.trust[name]
		ctp, ok := cur.trust[name]
		var why string
		switch {
		case !ok || !ctp.CreatedAt.Equal(tp.CreatedAt):
			if err := tx.DeleteTrustPolicy(ctx, name); err != nil {
				return nil, err
			}
			why = "deleted"
			r.TrustPoliciesDeleted++
		case !sameTrustPolicy(tp, ctp) || !tp.UpdatedAt.Equal(ctp.UpdatedAt):
			if err := tx.UpdateTrustPolicy(ctx, ctp); err != nil {
				return nil, err
			}
			why = "changed"
			r.TrustPoliciesUpdated++
		default:
			continue
		}
		c.changeTrust(name)
		gone, err := s.revokeIssuedTx(ctx, tx, c, nil, name, "restore: trust policy "+why+" after the backup")
		if err != nil {
			return nil, err
		}
		r.TokensRevoked += len(gone)
		events = append(events, restoring(append(gone, s.event(nil, gatehouse.EventTrustChanged, "settings", "update", "trust",
			fmt.Sprintf("restore: %q %s after the backup; %d issued token(s) revoked", name, why, len(gone)))))...)
	}

	// What decides permissions: the replaced store's, whole.
	policyEvents, err := s.carryPolicy(ctx, tx, c, back, cur, r)
	if err != nil {
		return nil, err
	}
	events = append(events, restoring(policyEvents)...)

	// Tokens: what is left of the backup's after the above.
	left, err := tx.ListTokens(ctx, gatehouse.TokenFilter{})
	if err != nil {
		return nil, err
	}
	for _, t := range left {
		ct, ok := cur.tokens[t.ID]
		if !ok {
			if _, err := tx.DeleteTokens(ctx, gatehouse.TokenFilter{ID: t.ID}); err != nil {
				return nil, err
			}
			c.revoke(t.ID)
			if t.Expired(now) {
				r.TokensExpired++
				events = append(events, restoring([]gatehouse.Event{s.tokenEvent(nil, gatehouse.EventTokenExpired, t, "restore: removed after the backup, expired")})...)
			} else {
				r.TokensRevoked++
				events = append(events, restoring([]gatehouse.Event{s.tokenEvent(nil, gatehouse.EventTokenRevoked, t, "restore: revoked after the backup")})...)
			}
			continue
		}
		kept := carriedToken(t, ct)
		shortened, changed := !kept.ExpiresAt.Equal(t.ExpiresAt), !sameTokenRecord(kept, t)
		if !shortened && !changed && kept.LastUsedAt.Equal(t.LastUsedAt) && kept.LastUsedFrom == t.LastUsedFrom {
			continue
		}
		if _, err := tx.DeleteTokens(ctx, gatehouse.TokenFilter{ID: t.ID}); err != nil {
			return nil, err
		}
		if err := tx.CreateToken(ctx, kept); err != nil {
			return nil, err
		}
		c.putToken(kept)
		if shortened {
			r.TokensShortened++
		}
		if changed {
			r.TokensUpdated++
		}
	}

	// Subject tokens already exchanged, and CLI login confirmations
	// already answered, stay so.
	for _, rp := range cur.replays {
		if !rp.ExpiresAt.After(now) {
			continue // pruned anyway; no longer accepted
		}
		done, err := tx.ExchangeReplayed(ctx, rp.Key)
		if err != nil {
			return nil, err
		}
		if done {
			continue
		}
		if err := tx.AddExchangeReplay(ctx, rp.Key, rp.ExpiresAt); err != nil {
			return nil, err
		}
		r.ExchangeReplays++
	}

	// Tokens rotated away stay known: presented again, they revoke their
	// family.
	for _, rot := range cur.rots {
		_, err := tx.GetRotation(ctx, rot.ID)
		if err == nil {
			continue
		}
		if !gatehouse.IsCode(err, gatehouse.ENOTFOUND) {
			return nil, err
		}
		if err := tx.AddRotation(ctx, rot); err != nil {
			return nil, err
		}
		c.putRotation(rot)
	}

	// Login failures still count: the union of both throttles, the
	// replaced store's entry where both have one (it is the later state).
	had := map[gatehouse.LoginAttemptEntry]bool{}
	for _, e := range back.logins {
		had[e] = true
	}
	var logins []gatehouse.LoginAttemptEntry
	for _, e := range cur.logins {
		if !had[e] {
			logins = append(logins, e)
		}
	}
	if err := rtx.PutLoginAttemptEntries(ctx, logins); err != nil {
		return nil, err
	}
	r.LoginAttempts = len(logins)

	// The replaced store's records of backups taken since (the one being
	// restored among them), so that they stay restorable.
	for i := len(cur.backups) - 1; i >= 0; i-- {
		if ev := cur.backups[i]; ev.ID > back.eventSeq {
			ev.ID = 0
			events = append(events, ev)
		}
	}

	// What only the replaced store holds.
	for name, ca := range cur.accounts {
		if a, ok := back.accounts[name]; !ok || !sameAccount(a, ca) {
			r.NewerAccounts++
		}
	}
	for id, ct := range cur.tokens {
		if _, ok := back.tokens[id]; !ok && !ct.Expired(now) {
			r.NewerTokens++
		}
	}
	for name, ctp := range cur.trust {
		if tp, ok := back.trust[name]; !ok || !tp.CreatedAt.Equal(ctp.CreatedAt) {
			r.NewerTrustPolicies++
		}
	}
	return events, nil
}

// carryPolicy makes the RBAC settings, the projects and the applications
// (with their operations) of tx those of cur, and returns the events that
// record it.
func (s *Service) carryPolicy(ctx context.Context, tx gatehouse.Tx, c *change, back, cur storeState, r *gatehouse.RestoreReport) ([]gatehouse.Event, error) {
	var events []gatehouse.Event
	if !back.hasRBAC || !reflect.DeepEqual(back.rbac, cur.rbac) {
		if err := tx.PutRBAC(ctx, cur.rbac); err != nil {
			return nil, err
		}
		c.policy = true
		r.RBACUpdated = true
		events = append(events, s.event(nil, gatehouse.EventPolicyChanged, "settings", "update", "rbac", "restore: the RBAC settings as after the backup"))
	}

	for _, name := range sortedKeys(back.projects) {
		p := back.projects[name]
		cp, ok := cur.projects[name]
		if ok && cp.CreatedAt.Equal(p.CreatedAt) {
			continue // updated below
		}
		if err := tx.DeleteProject(ctx, name); err != nil {
			return nil, err
		}
		c.policy = true
		r.ProjectsDeleted++
		events = append(events, s.event(nil, gatehouse.EventProjectChanged, "projects", "delete", name, "restore: deleted after the backup"))
	}
	for _, name := range sortedKeys(cur.projects) {
		cp := cur.projects[name]
		p, ok := back.projects[name]
		switch {
		case !ok || !p.CreatedAt.Equal(cp.CreatedAt):
			if err := tx.CreateProject(ctx, cp); err != nil {
				return nil, err
			}
			r.ProjectsCreated++
			events = append(events, s.event(nil, gatehouse.EventProjectChanged, "projects", "create", name, "restore: made after the backup"))
		case !reflect.DeepEqual(p, cp):
			if err := tx.UpdateProject(ctx, cp); err != nil {
				return nil, err
			}
			r.ProjectsUpdated++
			events = append(events, s.event(nil, gatehouse.EventProjectChanged, "projects", "update", name, "restore: roles as after the backup"))
		default:
			continue
		}
		c.policy = true
	}

	// An application differing in any way is made again from the
	// replaced store's record, with its operations. (Applications have no
	// lifecycle event of their own; the store.restored event counts them.)
	for _, name := range sortedKeys(back.apps) {
		a := back.apps[name]
		ca, ok := cur.apps[name]
		if ok && reflect.DeepEqual(a, ca) && reflect.DeepEqual(back.ops[name], cur.ops[name]) {
			continue
		}
		if err := tx.DeleteApplication(ctx, name); err != nil {
			return nil, err
		}
		if !ok {
			c.deleteApp(name)
			r.ApplicationsDeleted++
		}
	}
	for _, name := range sortedKeys(cur.apps) {
		ca := cur.apps[name]
		a, ok := back.apps[name]
		if ok && reflect.DeepEqual(a, ca) && reflect.DeepEqual(back.ops[name], cur.ops[name]) {
			continue
		}
		if err := tx.CreateApplication(ctx, ca); err != nil {
			return nil, err
		}
		ops := cur.ops[name]
		for i := len(ops) - 1; i >= 0; i-- { // oldest first
			if err := tx.CreateOperation(ctx, ops[i]); err != nil {
				return nil, err
			}
		}
		c.putApp(ca)
		if ok {
			r.ApplicationsUpdated++
		} else {
			r.ApplicationsCreated++
		}
	}
	return events, nil
}

// carriedToken is the record a restore keeps of a token that both the
// backup (t) and the replaced store (cur) hold: the replaced store's, with
// the earlier expiry and the later use.
func carriedToken(t, cur gatehouse.Token) gatehouse.Token {
	kept := cur
	if !t.ExpiresAt.IsZero() && (kept.ExpiresAt.IsZero() || t.ExpiresAt.Before(kept.ExpiresAt)) {
		kept.ExpiresAt = t.ExpiresAt
	}
	if t.LastUsedAt.After(kept.LastUsedAt) {
		kept.LastUsedAt, kept.LastUsedFrom = t.LastUsedAt, t.LastUsedFrom
	}
	return kept
}

// sameTokenRecord: a and b are the same but for their expiry and last use.
func sameTokenRecord(a, b gatehouse.Token) bool {
	if !a.IssuedAt.Equal(b.IssuedAt) {
		return false
	}
	a.ExpiresAt, a.LastUsedAt, a.LastUsedFrom, a.IssuedAt = time.Time{}, time.Time{}, "", time.Time{}
	b.ExpiresAt, b.LastUsedAt, b.LastUsedFrom, b.IssuedAt = time.Time{}, time.Time{}, "", time.Time{}
	if len(a.Scopes) == 0 && len(b.Scopes) == 0 {
		a.Scopes, b.Scopes = nil, nil
	}
	return reflect.DeepEqual(a, b)
}

// accountChanges names what of b differs from a, for an event's detail.
func accountChanges(a, b gatehouse.Account) string {
	var out []string
	if a.Enabled != b.Enabled {
		if b.Enabled {
			out = append(out, "enabled")
		} else {
			out = append(out, "disabled")
		}
	}
	if !slices.Equal(a.Capabilities, b.Capabilities) {
		out = append(out, "capabilities")
	}
	if !slices.Equal(a.Groups, b.Groups) {
		out = append(out, "groups")
	}
	if !bytes.Equal(a.PasswordHash, b.PasswordHash) {
		out = append(out, "password")
	}
	if !reflect.DeepEqual(a.SSO, b.SSO) || !a.GroupsRefreshedAt.Equal(b.GroupsRefreshedAt) || !a.LastLoginAt.Equal(b.LastLoginAt) {
		out = append(out, "SSO state")
	}
	if len(out) == 0 {
		return "record"
	}
	return strings.Join(out, ", ")
}

// restoreDetail is the store.restored event's detail: counts, the file's
// name and digest, nothing from a record.
func restoreDetail(r gatehouse.RestoreReport, from, kept string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "from %s (sha256 %x)", from, r.SHA256)
	if kept != "" {
		fmt.Fprintf(&b, "; replaced database kept as %s", kept)
	}
	if !r.Carried {
		b.WriteString("; no store to carry revocations from: revocations made after the backup cannot be known")
		return b.String()
	}
	if r.Unrecorded {
		b.WriteString("; the replaced store records no such backup (restored with --unrecorded)")
	} else {
		fmt.Fprintf(&b, "; the backup taken by %s at %s", r.BackupTakenBy, r.BackupTakenAt.UTC().Format(time.RFC3339))
	}
	fmt.Fprintf(&b, "; carried from the replaced store: %d token(s) revoked, %d expired, %d expiry(ies) shortened, %d token record(s) replaced, %d account(s) deleted, %d updated (%d disabled), %d trust policy(ies) deleted, %d updated, %d exchange replay(s) or answered CLI login(s), %d login attempt(s)",
		r.TokensRevoked, r.TokensExpired, r.TokensShortened, r.TokensUpdated, r.AccountsDeleted, r.AccountsUpdated, r.AccountsDisabled,
		r.TrustPoliciesDeleted, r.TrustPoliciesUpdated, r.ExchangeReplays, r.LoginAttempts)
	rbac := "the same"
	if r.RBACUpdated {
		rbac = "replaced"
	}
	fmt.Fprintf(&b, "; RBAC settings %s; projects %d made, %d updated, %d deleted; applications %d made, %d updated, %d deleted",
		rbac, r.ProjectsCreated, r.ProjectsUpdated, r.ProjectsDeleted, r.ApplicationsCreated, r.ApplicationsUpdated, r.ApplicationsDeleted)
	fmt.Fprintf(&b, "; not in the backup: %d account(s), %d token(s), %d trust policy(ies)", r.NewerAccounts, r.NewerTokens, r.NewerTrustPolicies)
	return b.String()
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// PasswordReset is what ResetAdminPassword did.
type PasswordReset struct {
	SessionsRevoked int
	// APITokensRevoked were revoked on request; APITokensLeft still work
	// (unexpired): whoever holds one is admin still.
	APITokensRevoked int
	APITokensLeft    int
}

// ResetAdminPassword gives the admin account a new password, offline, for
// an operator who lost it: the store must be one no server is using. The
// password rules and the hashing are those of every password; the account
// is enabled, its sessions are revoked, its failed logins are forgotten,
// and the audit trail records it. Its API tokens stay unless
// revokeAPITokens: a password lost may be a password taken, and the
// tokens minted with it act as admin until they expire.
func (s *Service) ResetAdminPassword(ctx context.Context, password string, revokeAPITokens bool) (PasswordReset, error) {
	hash, err := s.hashPassword(password)
	if err != nil {
		return PasswordReset{}, err
	}
	var out PasswordReset
	now := s.now()
	err = s.write(ctx, nil, func(tx gatehouse.Tx, c *change) error {
		out = PasswordReset{}
		a, err := tx.GetAccount(ctx, gatehouse.AdminAccount)
		if gatehouse.IsCode(err, gatehouse.ENOTFOUND) {
			return gatehouse.Errorf(gatehouse.ENOTFOUND, "the store has no admin account: a server makes it at its first start")
		}
		if err != nil {
			return err
		}
		a.PasswordHash = hash
		a.Enabled = true
		if !a.Has(gatehouse.CapLogin) {
			a.Capabilities = append(a.Capabilities, gatehouse.CapLogin)
		}
		if err := tx.UpdateAccount(ctx, a); err != nil {
			return err
		}
		c.putAccount(a)
		gone, err := s.revokeTx(ctx, tx, c, nil, gatehouse.TokenFilter{Account: a.Name, Kind: gatehouse.KindSession}, gatehouse.EventTokenRevoked, "admin password reset offline")
		if err != nil {
			return err
		}
		out.SessionsRevoked = len(gone)
		detail := fmt.Sprintf("password reset offline (gatehouse admin reset-admin-password); %d session(s) revoked", len(gone))
		if revokeAPITokens {
			keys, err := s.revokeTx(ctx, tx, c, nil, gatehouse.TokenFilter{Account: a.Name, Kind: gatehouse.KindAPI}, gatehouse.EventTokenRevoked, "admin password reset offline, with its API tokens")
			if err != nil {
				return err
			}
			out.APITokensRevoked = len(keys)
			detail += fmt.Sprintf(", %d API token(s) revoked", len(keys))
			gone = append(gone, keys...)
		}
		left, err := tx.ListTokens(ctx, gatehouse.TokenFilter{Account: a.Name, Kind: gatehouse.KindAPI})
		if err != nil {
			return err
		}
		for _, t := range left {
			if !t.Expired(now) {
				out.APITokensLeft++
			}
		}
		if !revokeAPITokens {
			detail += fmt.Sprintf("; %d API token(s) kept", out.APITokensLeft)
		}
		if err := tx.ClearLoginFailures(ctx, loginKey("user", a.Name)); err != nil {
			return err
		}
		events := append(gone, s.event(nil, gatehouse.EventAccountChanged, "accounts", "update", a.Name, detail))
		for i := range events {
			events[i].Actor = actorResetPassword
		}
		return tx.AppendEvents(ctx, events)
	})
	if err != nil {
		return PasswordReset{}, err
	}
	return out, nil
}
