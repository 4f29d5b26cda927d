package service

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/policy"
)

// The RBAC settings that the configuration file sets.
//
// A GitOps server's policy belongs in Git, as Argo CD's argocd-rbac-cm
// does: when the YAML file sets rbac.policyCSV, rbac.policyDefault or
// rbac.matchMode, the file is that field's source of truth. At every
// start the file's value is written through the same checks as an API
// edit, as a change of its own (audited with actor "config"), unless the
// store already holds it; while the file sets a field, the API may not
// change it. A field the file does not set is stored once, at the first
// start, and is the API's to edit.

// actorConfig is the actor of the audit event of a change that the
// configuration file made. No account can have the name (':' is not in
// an account name), so no account's requests are taken for the file's,
// nor may an account read the file's records as its own.
const actorConfig = "system:config"

// owning returns the settings the file owns: what it sets and, when it
// sets the policy, also the default role and the match mode (their
// defaults when it leaves them out). Either changes what the policy
// means — a default role is asked first and its allow ends the decision,
// so it can void every deny of the file's policy, and a pattern means
// something else in the other match mode — so an API edit of them would
// undo the file's policy without touching its text.
func (f FileRBAC) owning() FileRBAC {
	if f.setting("policyCSV") == nil {
		return f
	}
	f.Settings = slices.Clone(f.Settings)
	for _, field := range []string{"policyDefault", "matchMode"} {
		if f.setting(field) == nil {
			f.Settings = append(f.Settings, FileSetting{Field: field})
		}
	}
	return f
}

// FileRBAC is what the configuration file sets of the RBAC settings.
type FileRBAC struct {
	// File is the configuration file's path, named in messages.
	File string
	// Settings are the fields the file sets, each once.
	Settings []FileSetting
}

// FileSetting is one RBAC field that the configuration file sets.
type FileSetting struct {
	// Field is the field's name in gatehouse.RBAC's JSON, which is also
	// its YAML key under rbac: "policyCSV", "policyDefault" or
	// "matchMode".
	Field string
	Value string
	// Line is the file's line of the key; 0 when not known (a value
	// reached through a YAML alias or merge).
	Line int
	// FirstLine, for a value written as a literal block (policyCSV: |),
	// is the file's line of the value's first line, so that policy line
	// n is file line FirstLine+n-1; 0 otherwise.
	FirstLine int
}

// rbacField returns the field of r that name names, nil for another name.
func rbacField(r *gatehouse.RBAC, name string) *string {
	switch name {
	case "policyCSV":
		return &r.PolicyCSV
	case "policyDefault":
		return &r.PolicyDefault
	case "matchMode":
		return &r.MatchMode
	}
	return nil
}

// check refuses settings that name an unknown field or one field twice.
func (f FileRBAC) check() error {
	seen := map[string]bool{}
	for _, st := range f.Settings {
		if rbacField(&gatehouse.RBAC{}, st.Field) == nil {
			return fmt.Errorf("service: the configuration file cannot set the RBAC field %q", st.Field)
		}
		if seen[st.Field] {
			return fmt.Errorf("service: the RBAC field %q is given twice", st.Field)
		}
		seen[st.Field] = true
	}
	return nil
}

// Fields names the fields the file sets, nil for none.
func (f FileRBAC) Fields() []string {
	var out []string
	for _, st := range f.Settings {
		out = append(out, st.Field)
	}
	return out
}

// clear returns r without the fields the file sets: what the first start
// stores before the file's values are applied.
func (f FileRBAC) clear(r gatehouse.RBAC) gatehouse.RBAC {
	for _, st := range f.Settings {
		*rbacField(&r, st.Field) = ""
	}
	return r
}

// overlay returns r with the file's values, and the fields whose stored
// value that changes (compared exactly, so that the store ends up
// holding what the file says).
func (f FileRBAC) overlay(r gatehouse.RBAC) (gatehouse.RBAC, []string) {
	var changed []string
	for _, st := range f.Settings {
		v := rbacField(&r, st.Field)
		same := *v == st.Value || st.Field == "matchMode" && orGlob(*v) == orGlob(st.Value)
		*v = st.Value
		if !same {
			changed = append(changed, st.Field)
		}
	}
	return r, changed
}

// keep is PutRBAC's rule: a request may not change a field the file
// sets. It refuses one that would, naming the file, and otherwise keeps
// the stored value of each such field (an empty matchMode and "glob" are
// the same request).
func (f FileRBAC) keep(r *gatehouse.RBAC, stored gatehouse.RBAC) error {
	var refused []string
	for _, st := range f.Settings {
		want, have := rbacField(r, st.Field), *rbacField(&stored, st.Field)
		if *want != have && !(st.Field == "matchMode" && orGlob(*want) == orGlob(have)) {
			refused = append(refused, "rbac."+st.Field)
		}
		*want = have
	}
	if len(refused) == 0 {
		return nil
	}
	verb := "is"
	if len(refused) > 1 {
		verb = "are"
	}
	return gatehouse.Errorf(gatehouse.ECONFLICT, "%s %s set in the configuration file (%s); edit the file and restart",
		joinAnd(refused), verb, f.File)
}

func orGlob(mode string) string { return or(mode, "glob") }

// joinAnd joins names as "a", "a and b", "a, b and c".
func joinAnd(names []string) string {
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}

// setting returns the file's setting of field, nil when it sets none.
func (f FileRBAC) setting(field string) *FileSetting {
	for i := range f.Settings {
		if f.Settings[i].Field == field {
			return &f.Settings[i]
		}
	}
	return nil
}

// where names the file's setting of field for a message:
// "rbac.policyCSV (line 4)".
func (f FileRBAC) where(field string) string {
	if st := f.setting(field); st != nil && st.Line > 0 {
		return fmt.Sprintf("rbac.%s (line %d)", field, st.Line)
	}
	return "rbac." + field
}

// whereAll names every setting of the file for a message.
func (f FileRBAC) whereAll() string {
	var out []string
	for _, st := range f.Settings {
		out = append(out, f.where(st.Field))
	}
	return joinAnd(out)
}

// applyFileRBAC writes the file's settings over the stored ones, at
// start, with the checks of an API edit (PutRBAC) and through the one
// write path, so that other replicas apply the change from the feed. A
// file the store already agrees with writes nothing and records nothing.
// Settings that an API edit would refuse stop the start, with the key
// and line at fault.
//
// Every replica applies its own file at start, so the last to start
// wins. When the values it replaces were applied by another replica's
// file (the audit record of that change names the replica), the files
// disagree, and it says so in a warning: that is expected while a
// changed file is rolled out, and a misconfiguration otherwise.
func (s *Service) applyFileRBAC(ctx context.Context) error {
	f := s.fileRBAC
	if len(f.Settings) == 0 {
		return nil
	}
	var (
		stored   gatehouse.RBAC
		projects []gatehouse.Project
		recent   []gatehouse.Event // the file changes, newest first
	)
	err := s.store.View(ctx, func(tx gatehouse.Tx) error {
		var err error
		if stored, err = tx.GetRBAC(ctx); err != nil {
			return err
		}
		if projects, err = tx.ListProjects(ctx); err != nil {
			return err
		}
		recent, err = tx.ListEvents(ctx, gatehouse.EventFilter{Type: gatehouse.EventPolicyChanged, Actor: actorConfig, Limit: recentFileChanges})
		return err
	})
	if err != nil {
		return fmt.Errorf("configuration file %s: reading the RBAC settings: %w", f.File, err)
	}
	want, changed := f.overlay(stored)
	if len(changed) == 0 {
		return nil
	}
	if field, problem := checkRBAC(want); problem != "" {
		return fmt.Errorf("configuration file %s: %s: %s", f.File, f.where(field), problem)
	}
	if _, err := s.compileEngine(want, projects); err != nil {
		return f.compileError(err)
	}
	if stale, other, at := s.staleFile(recent); stale {
		// This replica's file is the one it applied before, and another
		// replica's file has been applied since: an edit rolled out to
		// the others, and this replica restarted with the old file.
		// Applying it would undo that edit (a revocation made in Git,
		// say), so it keeps what is in force and says so.
		s.log.ErrorContext(ctx, "not applying this replica's RBAC settings: they are the ones it applied before, and another replica's configuration file has changed them since; keeping the settings in force. Update this replica's file to match the others",
			"file", f.File, "other_replica", other, "other_applied_at", at, "replica", s.replica)
		return nil
	}
	if len(recent) > 0 {
		last := recent
		if prev, ok := parseFileDetail(last[0].Detail); ok && prev.replica != s.replica {
			var theirs []string
			for _, name := range changed {
				if d, ok := prev.sets[name]; ok && d == digest(*rbacField(&stored, name)) {
					theirs = append(theirs, "rbac."+name)
				}
			}
			if len(theirs) > 0 {
				s.log.WarnContext(ctx, "the RBAC settings in force come from another replica's configuration file, which differs from this one's; applying this one's, since the last replica to start wins. Every replica must have the same file: while a changed file is being rolled out this is expected until every replica has restarted, otherwise fix the file that is out of date",
					"file", f.File, "fields", theirs, "other_replica", prev.replica, "other_applied_at", last[0].Time, "replica", s.replica)
			}
		}
	}
	// The store may have changed since the read (another replica
	// starting): compare again in the writing transaction.
	var applied []string
	err = s.write(ctx, nil, func(tx gatehouse.Tx, c *change) error {
		cur, err := tx.GetRBAC(ctx)
		if err != nil {
			return err
		}
		var next gatehouse.RBAC
		if next, applied = f.overlay(cur); len(applied) == 0 {
			return nil
		}
		if err := tx.PutRBAC(ctx, next); err != nil {
			return err
		}
		c.policy = true
		ev := s.event(nil, gatehouse.EventPolicyChanged, "settings", "update", "rbac", fileDetail(f, s.replica, applied))
		ev.Actor = actorConfig
		return tx.AppendEvents(ctx, []gatehouse.Event{ev})
	})
	if err != nil {
		if gatehouse.IsCode(err, gatehouse.EINVALID) {
			return fmt.Errorf("configuration file %s: %s: %s", f.File, f.whereAll(), gatehouse.ErrorMessage(err))
		}
		return fmt.Errorf("configuration file %s: applying the RBAC settings: %w", f.File, err)
	}
	if len(applied) > 0 {
		names := make([]string, len(applied))
		for i, n := range applied {
			names[i] = "rbac." + n
		}
		s.log.InfoContext(ctx, "applied the RBAC settings of the configuration file", "file", f.File, "changed", names)
	}
	return nil
}

// recentFileChanges bounds the file changes read at start to find this
// replica's own last one.
const recentFileChanges = 200

// staleFile reports whether this replica's file is out of date: the
// newest file change was another replica's, this replica made one
// before it, and this replica's file is still what it applied then.
// (A replica with no change of its own on record, within the audit
// retention, cannot tell, and applies its file.)
func (s *Service) staleFile(recent []gatehouse.Event) (stale bool, other string, at time.Time) {
	if len(recent) == 0 {
		return false, "", time.Time{}
	}
	newest, ok := parseFileDetail(recent[0].Detail)
	if !ok || newest.replica == s.replica {
		return false, "", time.Time{}
	}
	for _, ev := range recent[1:] {
		mine, ok := parseFileDetail(ev.Detail)
		if !ok || mine.replica != s.replica {
			continue
		}
		for _, st := range s.fileRBAC.Settings {
			if mine.sets[st.Field] != digest(st.Value) {
				return false, "", time.Time{} // this file changed since
			}
		}
		return true, newest.replica, recent[0].Time
	}
	return false, "", time.Time{}
}

// compileError says why the file's settings do not compile, with the
// file's lines where it can place them.
func (f FileRBAC) compileError(err error) error {
	var ge *gatehouse.Error
	if errors.As(err, &ge) { // a stored project's lines
		return fmt.Errorf("configuration file %s: %s: %s", f.File, f.whereAll(), ge.Message)
	}
	var list policy.ErrorList
	if !errors.As(err, &list) {
		return fmt.Errorf("configuration file %s: %s: invalid policy: %v", f.File, f.whereAll(), err)
	}
	csv := f.setting("policyCSV")
	where, ownLines := f.whereAll(), csv != nil
	problems := make([]string, len(list))
	for i, le := range list {
		switch {
		case le.Line == 0: // a project role's line, from the store
			ownLines = false
			problems[i] = "project role " + le.Error()
		case csv == nil: // the stored policy, under the file's other settings
			problems[i] = "stored policy " + le.Error()
		case csv.FirstLine > 0:
			problems[i] = fmt.Sprintf("policy line %d (file line %d): %s", le.Line, csv.FirstLine+le.Line-1, le.Msg)
		default:
			problems[i] = fmt.Sprintf("policy line %d: %s", le.Line, le.Msg)
		}
	}
	if ownLines {
		where = f.where("policyCSV")
	}
	return fmt.Errorf("configuration file %s: %s: invalid policy: %s", f.File, where, strings.Join(problems, "; "))
}

// digest identifies a setting's value in an audit record without
// copying it there.
func digest(v string) string {
	sum := sha256.Sum256([]byte(v))
	return "sha256:" + hex.EncodeToString(sum[:8])
}

// fileDetail is the detail of the audit event of a change the file made:
// which file, on which replica, what changed, and a digest of every
// field the file sets, by which a later start recognizes values that
// another replica's file applied (parseFileDetail).
//
//	file "/etc/gatehouse/config.yaml"; replica "web-1"; changed rbac.policyCSV; sets rbac.policyCSV=sha256:… rbac.matchMode=sha256:…
func fileDetail(f FileRBAC, replica string, changed []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "file %s; replica %s; changed", strconv.Quote(f.File), strconv.Quote(replica))
	for _, name := range changed {
		b.WriteString(" rbac." + name)
	}
	b.WriteString("; sets")
	for _, st := range f.Settings {
		b.WriteString(" rbac." + st.Field + "=" + digest(st.Value))
	}
	return b.String()
}

// fileRecord is what fileDetail recorded: the replica, and the digest of
// each field its file set.
type fileRecord struct {
	replica string
	sets    map[string]string
}

func parseFileDetail(d string) (fileRecord, bool) {
	rest, ok := strings.CutPrefix(d, "file ")
	if !ok {
		return fileRecord{}, false
	}
	q, err := strconv.QuotedPrefix(rest)
	if err != nil {
		return fileRecord{}, false
	}
	if rest, ok = strings.CutPrefix(rest[len(q):], "; replica "); !ok {
		return fileRecord{}, false
	}
	if q, err = strconv.QuotedPrefix(rest); err != nil {
		return fileRecord{}, false
	}
	rec := fileRecord{sets: map[string]string{}}
	rec.replica, _ = strconv.Unquote(q)
	_, sets, ok := strings.Cut(rest[len(q):], "; sets ")
	if !ok {
		return fileRecord{}, false
	}
	for _, kv := range strings.Fields(sets) {
		k, v, ok := strings.Cut(kv, "=")
		name, isRBAC := strings.CutPrefix(k, "rbac.")
		if !ok || !isRBAC {
			return fileRecord{}, false
		}
		rec.sets[name] = v
	}
	return rec, true
}
