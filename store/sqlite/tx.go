package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	sqlite3 "modernc.org/sqlite/lib"

	"github.com/gatehouse/gatehouse"
)

// tx implements gatehouse.Tx over one SQL transaction.
type tx struct {
	tx *sql.Tx
}

var _ gatehouse.Tx = (*tx)(nil)

// scanner is what *sql.Row and *sql.Rows have in common.
type scanner interface{ Scan(...any) error }

// execOne runs a statement that must change one row; none is ENOTFOUND.
func (t *tx) execOne(ctx context.Context, what, q string, args ...any) error {
	r, err := t.tx.ExecContext(ctx, q, args...)
	if err != nil {
		return wrap(err)
	}
	n, err := r.RowsAffected()
	if err != nil {
		return wrap(err)
	}
	if n == 0 {
		return gatehouse.Errorf(gatehouse.ENOTFOUND, "%s not found", what)
	}
	return nil
}

// one reports sql.ErrNoRows as ENOTFOUND.
func one(err error, what string) error {
	if errors.Is(err, sql.ErrNoRows) {
		return gatehouse.Errorf(gatehouse.ENOTFOUND, "%s not found", what)
	}
	return wrap(err)
}

// list runs a query and scans every row with scan. It never returns a nil
// slice, so an empty list encodes as [] in JSON.
func list[T any](ctx context.Context, t *tx, scan func(scanner) (T, error), q string, args ...any) ([]T, error) {
	rows, err := t.tx.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, wrap(err)
	}
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, wrap(err)
		}
		out = append(out, v)
	}
	return out, wrap(rows.Err())
}

// where collects the conditions of a filter with $N placeholders.
type where struct {
	conds []string
	args  []any
}

// add appends cond, in which every ? stands for v.
func (w *where) add(cond string, v any) {
	w.args = append(w.args, v)
	w.conds = append(w.conds, strings.ReplaceAll(cond, "?", "$"+strconv.Itoa(len(w.args))))
}

func (w *where) String() string {
	if len(w.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(w.conds, " AND ")
}

// ---- accounts

const accountCols = `name, enabled, capabilities, groups_json, created_at, password_hash, source, last_login_at, groups_refreshed_at, sso`

func (t *tx) CreateAccount(ctx context.Context, a gatehouse.Account) error {
	var e encoder
	caps, groups, link := e.list(a.Capabilities), e.list(a.Groups), encodeSSO(&e, a.SSO)
	if err := e.check(); err != nil {
		return err
	}
	return insert(ctx, t.tx, "account "+strconv.Quote(a.Name)+" already exists",
		`INSERT INTO accounts (`+accountCols+`, sso_issuer, sso_subject) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
		a.Name, a.Enabled, caps, groups, nanos(a.CreatedAt), a.PasswordHash,
		a.Source, nanos(a.LastLoginAt), nanos(a.GroupsRefreshedAt), link, a.SSO.Issuer, a.SSO.Subject)
}

func scanAccount(sc scanner) (gatehouse.Account, error) {
	var (
		a                         gatehouse.Account
		caps, groups, link        string
		created, login, refreshed int64
	)
	if err := sc.Scan(&a.Name, &a.Enabled, &caps, &groups, &created, &a.PasswordHash,
		&a.Source, &login, &refreshed, &link); err != nil {
		return a, err
	}
	a.CreatedAt = fromNanos(created)
	a.LastLoginAt, a.GroupsRefreshedAt = fromNanos(login), fromNanos(refreshed)
	if err := decodeSSO(link, &a.SSO); err != nil {
		return a, err
	}
	a.Capabilities = []gatehouse.Capability{}
	a.Groups = []string{}
	if err := fromJSON(caps, &a.Capabilities); err != nil {
		return a, err
	}
	return a, fromJSON(groups, &a.Groups)
}

func (t *tx) GetAccount(ctx context.Context, name string) (gatehouse.Account, error) {
	a, err := scanAccount(t.tx.QueryRowContext(ctx, `SELECT `+accountCols+` FROM accounts WHERE name = $1`, name))
	return a, one(err, "account")
}

// ListAccounts returns every account, sorted by name.
func (t *tx) ListAccounts(ctx context.Context) ([]gatehouse.Account, error) {
	return list(ctx, t, scanAccount, `SELECT `+accountCols+` FROM accounts ORDER BY name`)
}

// UpdateAccount replaces everything but the name and the creation time.
func (t *tx) UpdateAccount(ctx context.Context, a gatehouse.Account) error {
	var e encoder
	caps, groups, link := e.list(a.Capabilities), e.list(a.Groups), encodeSSO(&e, a.SSO)
	if err := e.check(); err != nil {
		return err
	}
	return t.execOne(ctx, "account",
		`UPDATE accounts SET enabled = $2, capabilities = $3, groups_json = $4, password_hash = $5,
			source = $6, last_login_at = $7, groups_refreshed_at = $8, sso = $9,
			sso_issuer = $10, sso_subject = $11 WHERE name = $1`,
		a.Name, a.Enabled, caps, groups, a.PasswordHash, a.Source, nanos(a.LastLoginAt), nanos(a.GroupsRefreshedAt), link,
		a.SSO.Issuer, a.SSO.Subject)
}

// DeleteAccount deletes the account only: the service deletes its tokens in
// the same transaction, auditing each one.
func (t *tx) DeleteAccount(ctx context.Context, name string) error {
	return t.execOne(ctx, "account", `DELETE FROM accounts WHERE name = $1`, name)
}

// ---- tokens

const tokenCols = `id, name, kind, account, project, role, scopes, issued_at, expires_at, last_used_at, last_used_from, created_by, hash, idle_timeout, self_rotate, family, text_hash`

func (t *tx) CreateToken(ctx context.Context, k gatehouse.Token) error {
	// The columns are NOT NULL; the driver binds nil as NULL.
	hash, text := k.Hash, k.TextHash
	if hash == nil {
		hash = []byte{}
	}
	if text == nil {
		text = []byte{}
	}
	var e encoder
	scopes := e.list(k.Scopes)
	if err := e.check(); err != nil {
		return err
	}
	return insert(ctx, t.tx, "token "+strconv.Quote(k.ID)+" already exists",
		`INSERT INTO tokens (`+tokenCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)`,
		k.ID, k.Name, string(k.Kind), k.Account, k.Project, k.Role, scopes,
		nanos(k.IssuedAt), nanos(k.ExpiresAt), nanos(k.LastUsedAt), k.LastUsedFrom, k.CreatedBy, hash,
		k.IdleTimeout, k.SelfRotate, k.Family, text)
}

func scanToken(sc scanner) (gatehouse.Token, error) {
	var (
		k                      gatehouse.Token
		kind, scopes           string
		issued, expires, usedA int64
	)
	err := sc.Scan(&k.ID, &k.Name, &kind, &k.Account, &k.Project, &k.Role, &scopes,
		&issued, &expires, &usedA, &k.LastUsedFrom, &k.CreatedBy, &k.Hash,
		&k.IdleTimeout, &k.SelfRotate, &k.Family, &k.TextHash)
	if err != nil {
		return k, err
	}
	k.Kind = gatehouse.TokenKind(kind)
	if len(k.TextHash) == 0 {
		k.TextHash = nil // minted before text hashes were kept
	}
	k.IssuedAt, k.ExpiresAt, k.LastUsedAt = fromNanos(issued), fromNanos(expires), fromNanos(usedA)
	k.Scopes = []gatehouse.Scope{}
	return k, fromJSON(scopes, &k.Scopes)
}

func (t *tx) GetToken(ctx context.Context, id string) (gatehouse.Token, error) {
	k, err := scanToken(t.tx.QueryRowContext(ctx, `SELECT `+tokenCols+` FROM tokens WHERE id = $1`, id))
	return k, one(err, "token")
}

// tokenWhere translates a filter; zero fields do not filter.
func tokenWhere(f gatehouse.TokenFilter) *where {
	w := &where{}
	if f.ID != "" {
		w.add("id = ?", f.ID)
	}
	if f.Account != "" {
		w.add("account = ?", f.Account)
	}
	if f.Project != "" {
		w.add("project = ?", f.Project)
	}
	if f.Role != "" {
		w.add("role = ?", f.Role)
	}
	if f.Kind != "" {
		w.add("kind = ?", string(f.Kind))
	}
	if !f.IssuedBefore.IsZero() {
		w.add("issued_at < ?", nanos(f.IssuedBefore))
	}
	if !f.ExpiredBefore.IsZero() {
		// expires_at 0 is "never expires", not "expired in 1970".
		w.add("(expires_at <> 0 AND expires_at <= ?)", nanos(f.ExpiredBefore))
	}
	if f.ExceptID != "" {
		w.add("id <> ?", f.ExceptID)
	}
	if f.Family != "" {
		w.add("(family = ? OR id = ?)", f.Family)
	}
	if len(f.TextHash) > 0 {
		w.add("text_hash = ?", f.TextHash)
	}
	if !f.IdleAt.IsZero() {
		w.add("(idle_timeout > 0 AND MAX(last_used_at, issued_at) + idle_timeout * 1000000000 <= ?)", nanos(f.IdleAt))
	}
	return w
}

// ListTokens returns the matching tokens, newest first.
func (t *tx) ListTokens(ctx context.Context, f gatehouse.TokenFilter) ([]gatehouse.Token, error) {
	w := tokenWhere(f)
	return list(ctx, t, scanToken, `SELECT `+tokenCols+` FROM tokens`+w.String()+` ORDER BY issued_at DESC, id`, w.args...)
}

// DeleteTokens deletes the matching tokens and returns them, newest first.
// The transaction holds the write lock, so the list and the delete see the
// same rows.
func (t *tx) DeleteTokens(ctx context.Context, f gatehouse.TokenFilter) ([]gatehouse.Token, error) {
	gone, err := t.ListTokens(ctx, f)
	if err != nil || len(gone) == 0 {
		return gone, err
	}
	w := tokenWhere(f)
	if _, err := t.tx.ExecContext(ctx, `DELETE FROM tokens`+w.String(), w.args...); err != nil {
		return nil, wrap(err)
	}
	return gone, nil
}

func (t *tx) SetTokenExpiry(ctx context.Context, id string, expiresAt time.Time) error {
	return t.execOne(ctx, "token", `UPDATE tokens SET expires_at = $2 WHERE id = $1`, id, nanos(expiresAt))
}

// ---- projects

const projectCols = `name, description, roles, created_at`

func (t *tx) CreateProject(ctx context.Context, p gatehouse.Project) error {
	var e encoder
	roles := e.list(p.Roles)
	if err := e.check(); err != nil {
		return err
	}
	return insert(ctx, t.tx, "project "+strconv.Quote(p.Name)+" already exists",
		`INSERT INTO projects (`+projectCols+`) VALUES ($1, $2, $3, $4)`,
		p.Name, p.Description, roles, nanos(p.CreatedAt))
}

func scanProject(sc scanner) (gatehouse.Project, error) {
	var (
		p       gatehouse.Project
		roles   string
		created int64
	)
	if err := sc.Scan(&p.Name, &p.Description, &roles, &created); err != nil {
		return p, err
	}
	p.CreatedAt = fromNanos(created)
	p.Roles = []gatehouse.ProjectRole{}
	if err := fromJSON(roles, &p.Roles); err != nil {
		return p, err
	}
	for i := range p.Roles {
		if p.Roles[i].Policies == nil {
			p.Roles[i].Policies = []string{}
		}
		if p.Roles[i].Groups == nil {
			p.Roles[i].Groups = []string{}
		}
	}
	return p, nil
}

func (t *tx) GetProject(ctx context.Context, name string) (gatehouse.Project, error) {
	p, err := scanProject(t.tx.QueryRowContext(ctx, `SELECT `+projectCols+` FROM projects WHERE name = $1`, name))
	return p, one(err, "project")
}

// ListProjects returns every project, sorted by name.
func (t *tx) ListProjects(ctx context.Context) ([]gatehouse.Project, error) {
	return list(ctx, t, scanProject, `SELECT `+projectCols+` FROM projects ORDER BY name`)
}

// UpdateProject replaces the description and the roles.
func (t *tx) UpdateProject(ctx context.Context, p gatehouse.Project) error {
	var e encoder
	roles := e.list(p.Roles)
	if err := e.check(); err != nil {
		return err
	}
	return t.execOne(ctx, "project", `UPDATE projects SET description = $2, roles = $3 WHERE name = $1`,
		p.Name, p.Description, roles)
}

func (t *tx) DeleteProject(ctx context.Context, name string) error {
	return t.execOne(ctx, "project", `DELETE FROM projects WHERE name = $1`, name)
}

// ---- applications

const appCols = `name, project, spec, status, created_at`

func (t *tx) CreateApplication(ctx context.Context, a gatehouse.Application) error {
	var e encoder
	spec, status := e.json(a.Spec), e.json(a.Status)
	if err := e.check(); err != nil {
		return err
	}
	return insert(ctx, t.tx, "application "+strconv.Quote(a.Name)+" already exists",
		`INSERT INTO applications (`+appCols+`) VALUES ($1, $2, $3, $4, $5)`,
		a.Name, a.Project, spec, status, nanos(a.CreatedAt))
}

func scanApp(sc scanner) (gatehouse.Application, error) {
	var (
		a            gatehouse.Application
		spec, status string
		created      int64
	)
	if err := sc.Scan(&a.Name, &a.Project, &spec, &status, &created); err != nil {
		return a, err
	}
	a.CreatedAt = fromNanos(created)
	if err := fromJSON(spec, &a.Spec); err != nil {
		return a, err
	}
	if err := fromJSON(status, &a.Status); err != nil {
		return a, err
	}
	// JSON keeps the instant but not the location; give it back in UTC
	// like every other time.
	if !a.Status.ReportedAt.IsZero() {
		a.Status.ReportedAt = a.Status.ReportedAt.UTC()
	}
	return a, nil
}

func (t *tx) GetApplication(ctx context.Context, name string) (gatehouse.Application, error) {
	a, err := scanApp(t.tx.QueryRowContext(ctx, `SELECT `+appCols+` FROM applications WHERE name = $1`, name))
	return a, one(err, "application")
}

// ListApplications lists all applications, or one project's, sorted by name.
func (t *tx) ListApplications(ctx context.Context, project string) ([]gatehouse.Application, error) {
	w := &where{}
	if project != "" {
		w.add("project = ?", project)
	}
	return list(ctx, t, scanApp, `SELECT `+appCols+` FROM applications`+w.String()+` ORDER BY name`, w.args...)
}

// UpdateApplication replaces the project, spec and status.
func (t *tx) UpdateApplication(ctx context.Context, a gatehouse.Application) error {
	var e encoder
	spec, status := e.json(a.Spec), e.json(a.Status)
	if err := e.check(); err != nil {
		return err
	}
	return t.execOne(ctx, "application", `UPDATE applications SET project = $2, spec = $3, status = $4 WHERE name = $1`,
		a.Name, a.Project, spec, status)
}

// DeleteApplication deletes the application and its operations. The
// foreign key cascades too; the explicit delete keeps that true on a
// connection without foreign_keys.
func (t *tx) DeleteApplication(ctx context.Context, name string) error {
	if _, err := t.tx.ExecContext(ctx, `DELETE FROM operations WHERE application = $1`, name); err != nil {
		return wrap(err)
	}
	return t.execOne(ctx, "application", `DELETE FROM applications WHERE name = $1`, name)
}

// ---- operations

const opCols = `id, application, state, revision, prune, dry_run, requested_by, created_at, updated_at, message`

// CreateOperation returns ENOTFOUND when the application does not exist.
func (t *tx) CreateOperation(ctx context.Context, op gatehouse.Operation) error {
	err := insert(ctx, t.tx, "operation "+strconv.Quote(op.ID)+" already exists",
		`INSERT INTO operations (`+opCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		op.ID, op.Application, op.State, op.Revision, op.Prune, op.DryRun, op.RequestedBy,
		nanos(op.CreatedAt), nanos(op.UpdatedAt), op.Message)
	if isConstraint(err, sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY) {
		return &gatehouse.Error{Code: gatehouse.ENOTFOUND, Message: "application not found", Err: err}
	}
	return err
}

func scanOp(sc scanner) (gatehouse.Operation, error) {
	var (
		op               gatehouse.Operation
		created, updated int64
	)
	err := sc.Scan(&op.ID, &op.Application, &op.State, &op.Revision, &op.Prune, &op.DryRun,
		&op.RequestedBy, &created, &updated, &op.Message)
	op.CreatedAt, op.UpdatedAt = fromNanos(created), fromNanos(updated)
	return op, err
}

func (t *tx) GetOperation(ctx context.Context, app, id string) (gatehouse.Operation, error) {
	op, err := scanOp(t.tx.QueryRowContext(ctx, `SELECT `+opCols+` FROM operations WHERE application = $1 AND id = $2`, app, id))
	return op, one(err, "operation")
}

// ListOperations returns an application's operations, newest first,
// optionally only those in one state.
func (t *tx) ListOperations(ctx context.Context, app, state string) ([]gatehouse.Operation, error) {
	w := &where{}
	w.add("application = ?", app)
	if state != "" {
		w.add("state = ?", state)
	}
	return list(ctx, t, scanOp, `SELECT `+opCols+` FROM operations`+w.String()+` ORDER BY created_at DESC, id DESC`, w.args...)
}

// UpdateOperation replaces what an agent may change: state, revision,
// flags, message and update time. Who asked and when stay as created.
func (t *tx) UpdateOperation(ctx context.Context, op gatehouse.Operation) error {
	return t.execOne(ctx, "operation",
		`UPDATE operations SET state = $3, revision = $4, prune = $5, dry_run = $6, message = $7, updated_at = $8
		WHERE application = $1 AND id = $2`,
		op.Application, op.ID, op.State, op.Revision, op.Prune, op.DryRun, op.Message, nanos(op.UpdatedAt))
}

// ---- RBAC

func (t *tx) GetRBAC(ctx context.Context) (gatehouse.RBAC, error) {
	var r gatehouse.RBAC
	err := t.tx.QueryRowContext(ctx, `SELECT policy_csv, policy_default, scopes, match_mode FROM rbac WHERE id = 1`).
		Scan(&r.PolicyCSV, &r.PolicyDefault, &r.Scopes, &r.MatchMode)
	return r, one(err, "RBAC settings")
}

func (t *tx) PutRBAC(ctx context.Context, r gatehouse.RBAC) error {
	_, err := t.tx.ExecContext(ctx, `INSERT INTO rbac (id, policy_csv, policy_default, scopes, match_mode) VALUES (1, $1, $2, $3, $4)
		ON CONFLICT (id) DO UPDATE SET policy_csv = excluded.policy_csv, policy_default = excluded.policy_default,
		scopes = excluded.scopes, match_mode = excluded.match_mode`,
		r.PolicyCSV, r.PolicyDefault, r.Scopes, r.MatchMode)
	return wrap(err)
}

// ---- events

const eventCols = `time, type, actor, token_id, token_kind, method, path, resource, action, object, decision, status, remote_addr, user_agent, detail, via, route, account, count`

func (t *tx) AppendEvents(ctx context.Context, events []gatehouse.Event) error {
	return appendEvents(ctx, t.tx, events)
}

// eventRows is how many events one INSERT carries: 22 parameters each,
// well under SQLite's limit of 32,766 parameters a statement. One
// statement of many rows costs a fraction of as many one-row statements
// (the per-statement work of database/sql and the driver dominates).
const eventRows = 64

// insertEvents is the INSERT of n events, with their ids and chain links.
func insertEvents(n int) string {
	var b strings.Builder
	b.WriteString(`INSERT INTO events (id, ` + eventCols + `, prev_hash, hash) VALUES `)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)")
	}
	return b.String()
}

// insertFull is the statement of a full chunk, built once.
var insertFull = insertEvents(eventRows)

// appendEvents inserts a batch, eventRows events a statement (the full
// chunks through one prepared statement), and chains it. The ids follow
// the greatest one AUTOINCREMENT has handed out (inserting them raises its
// sequence), in the order of events, and are never reused after a prune;
// each row's hash covers its id, so the ids are given, not left to the
// INSERT. The writer is single, so the head read here stays the head.
func appendEvents(ctx context.Context, t *sql.Tx, events []gatehouse.Event) error {
	if len(events) == 0 {
		return nil
	}
	id, prev, err := chainHead(ctx, t)
	if err != nil {
		return err
	}
	var hasher gatehouse.ChainHasher
	args := make([]any, 0, 22*min(len(events), eventRows))
	add := func(chunk []gatehouse.Event) []any {
		args = args[:0]
		for _, e := range chunk {
			id++
			e.ID = id
			hash := hasher.Next(prev, e)
			link := make([]byte, 64)
			copy(link, prev[:])
			copy(link[32:], hash[:])
			prev = hash
			args = append(args, e.ID, nanos(e.Time), e.Type, e.Actor, e.TokenID, string(e.TokenKind), e.Method, e.Path,
				e.Resource, e.Action, e.Object, e.Decision, e.Status, e.RemoteAddr, e.UserAgent, e.Detail, e.Via, e.Route, e.Account,
				e.Requests(), link[:32], link[32:])
		}
		return args
	}
	if len(events) >= eventRows {
		stmt, err := t.PrepareContext(ctx, insertFull)
		if err != nil {
			return wrap(err)
		}
		defer stmt.Close()
		for len(events) >= eventRows {
			if _, err := stmt.ExecContext(ctx, add(events[:eventRows])...); err != nil {
				return wrap(err)
			}
			events = events[eventRows:]
		}
	}
	if len(events) > 0 {
		if _, err := t.ExecContext(ctx, insertEvents(len(events)), add(events)...); err != nil {
			return wrap(err)
		}
	}
	return setChainHead(ctx, t, id, prev)
}

func scanEvent(sc scanner) (gatehouse.Event, error) {
	var (
		e     gatehouse.Event
		tm    int64
		kind  string
		count int64
	)
	err := sc.Scan(&e.ID, &tm, &e.Type, &e.Actor, &e.TokenID, &kind, &e.Method, &e.Path, &e.Resource,
		&e.Action, &e.Object, &e.Decision, &e.Status, &e.RemoteAddr, &e.UserAgent, &e.Detail, &e.Via, &e.Route, &e.Account, &count)
	e.Time, e.TokenKind = fromNanos(tm), gatehouse.TokenKind(kind)
	if count > 1 {
		e.Count = int(count)
	}
	return e, err
}

// ListEvents returns the matching events, newest (highest id) first.
func (t *tx) ListEvents(ctx context.Context, f gatehouse.EventFilter) ([]gatehouse.Event, error) {
	w := &where{}
	if f.Actor != "" {
		w.add("actor = ?", f.Actor)
	}
	if f.Account != "" {
		w.add("account = ?", f.Account)
	}
	if f.TokenID != "" {
		w.add("token_id = ?", f.TokenID)
	}
	if f.Route != "" {
		w.add("route = ?", f.Route)
	}
	if f.Status != 0 {
		w.add("status = ?", f.Status)
	}
	if f.Resource != "" {
		w.add("resource = ?", f.Resource)
	}
	if f.Type != "" {
		w.add("type = ?", f.Type)
	}
	if f.Action != "" {
		w.add("action = ?", f.Action)
	}
	if f.Decision != "" {
		w.add("decision = ?", f.Decision)
	}
	if !f.Since.IsZero() {
		w.add("time >= ?", nanos(f.Since))
	}
	if !f.Until.IsZero() {
		w.add("time < ?", nanos(f.Until))
	}
	if f.BeforeID > 0 {
		w.add("id < ?", f.BeforeID)
	}
	q := `SELECT id, ` + eventCols + ` FROM events` + w.String() + ` ORDER BY id DESC`
	args := w.args
	if f.Limit > 0 {
		args = append(args, f.Limit)
		q += " LIMIT $" + strconv.Itoa(len(args))
	}
	return list(ctx, t, scanEvent, q, args...)
}

// PruneEvents deletes events older than before and returns how many.
func (t *tx) PruneEvents(ctx context.Context, before time.Time) (int, error) {
	// Ids follow time (events are appended as they happen), so the events
	// to prune are those before the first one at or after the cutoff; that
	// walks only the old events and needs no index on time, which would
	// tax every insert.
	var cutoff int64
	if err := t.tx.QueryRowContext(ctx, `SELECT COALESCE(
		(SELECT id FROM events WHERE time >= $1 ORDER BY id LIMIT 1),
		(SELECT COALESCE(MAX(id), 0) + 1 FROM events))`, nanos(before)).Scan(&cutoff); err != nil {
		return 0, wrap(err)
	}
	// The chain then starts at the last event deleted (audit_chain.go).
	if err := pruneChainStart(ctx, t.tx, cutoff); err != nil {
		return 0, err
	}
	r, err := t.tx.ExecContext(ctx, `DELETE FROM events WHERE id < $1`, cutoff)
	if err != nil {
		return 0, wrap(err)
	}
	n, err := r.RowsAffected()
	return int(n), wrap(err)
}

// ---- change feed

const changeCols = `seq, kind, key, at`

// RecordChanges advances change_head by len(changes) and appends the
// changes with the seqs it hands out. SQLite has one writer at a time, so
// seqs follow commit order.
func (t *tx) RecordChanges(ctx context.Context, changes []gatehouse.Change) error {
	if len(changes) == 0 {
		return nil
	}
	var head int64
	if err := t.tx.QueryRowContext(ctx, `UPDATE change_head SET seq = seq + $1 WHERE id = 1 RETURNING seq`,
		len(changes)).Scan(&head); err != nil {
		return wrap(err)
	}
	stmt, err := t.tx.PrepareContext(ctx, `INSERT INTO changes (`+changeCols+`) VALUES ($1, $2, $3, $4)`)
	if err != nil {
		return wrap(err)
	}
	defer stmt.Close()
	now := nanos(time.Now())
	first := head - int64(len(changes)) + 1
	for i, c := range changes {
		if _, err := stmt.ExecContext(ctx, first+int64(i), string(c.Kind), c.Key, now); err != nil {
			return wrap(err)
		}
	}
	return nil
}

func scanChange(sc scanner) (gatehouse.Change, error) {
	var (
		c    gatehouse.Change
		kind string
		tm   int64
	)
	err := sc.Scan(&c.Seq, &kind, &c.Key, &tm)
	c.Kind, c.At = gatehouse.ChangeKind(kind), fromNanos(tm)
	return c, err
}

// ---- login attempts

// LoginAttempts reads at most limit of key's newest failures and counts
// at most limit pending attempts, both from the (key, failed, at) index.
func (t *tx) LoginAttempts(ctx context.Context, key string, after time.Time, limit int) (gatehouse.LoginTally, error) {
	var tally gatehouse.LoginTally
	if limit <= 0 {
		return tally, gatehouse.Internal(fmt.Errorf("LoginAttempts: limit %d, want > 0", limit))
	}
	since := nanos(after)
	failed, err := list(ctx, t, func(sc scanner) (time.Time, error) {
		var n int64
		err := sc.Scan(&n)
		return fromNanos(n), err
	}, `SELECT at FROM login_attempts WHERE key = $1 AND failed = 1 AND at > $2 ORDER BY at DESC LIMIT $3`, key, since, limit)
	if err != nil {
		return tally, err
	}
	slices.Reverse(failed)
	tally.Failed = failed
	err = t.tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM (
		SELECT 1 FROM login_attempts WHERE key = $1 AND failed = 0 AND at > $2 LIMIT $3)`,
		key, since, limit).Scan(&tally.Pending)
	return tally, wrap(err)
}

// AddLoginAttempt inserts one pending row per key, once no row has the id.
func (t *tx) AddLoginAttempt(ctx context.Context, a gatehouse.LoginAttempt) error {
	msg := "login attempt " + strconv.Quote(a.ID) + " already exists"
	var n int
	if err := t.tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM (SELECT 1 FROM login_attempts WHERE id = $1 LIMIT 1)`, a.ID).Scan(&n); err != nil {
		return wrap(err)
	}
	if n > 0 {
		return gatehouse.Errorf(gatehouse.ECONFLICT, "%s", msg)
	}
	for _, k := range a.Keys {
		if err := insert(ctx, t.tx, msg, `INSERT INTO login_attempts (id, key, at, failed) VALUES ($1, $2, $3, 0)`,
			a.ID, k, nanos(a.At)); err != nil {
			return err
		}
	}
	return nil
}

func (t *tx) FailLoginAttempt(ctx context.Context, id string) error {
	_, err := t.tx.ExecContext(ctx, `UPDATE login_attempts SET failed = 1 WHERE id = $1`, id)
	return wrap(err)
}

func (t *tx) DeleteLoginAttempt(ctx context.Context, id string) error {
	_, err := t.tx.ExecContext(ctx, `DELETE FROM login_attempts WHERE id = $1`, id)
	return wrap(err)
}

func (t *tx) ClearLoginFailures(ctx context.Context, key string) error {
	_, err := t.tx.ExecContext(ctx, `DELETE FROM login_attempts WHERE key = $1 AND failed = 1`, key)
	return wrap(err)
}

func (t *tx) PruneLoginAttempts(ctx context.Context, before time.Time) (int, error) {
	r, err := t.tx.ExecContext(ctx, `DELETE FROM login_attempts WHERE at <= $1`, nanos(before))
	if err != nil {
		return 0, wrap(err)
	}
	n, err := r.RowsAffected()
	return int(n), wrap(err)
}

// ---- encoding

var (
	minTime = time.Unix(0, math.MinInt64)
	maxTime = time.Unix(0, math.MaxInt64)
)

// nanos is the stored form of t: Unix nanoseconds, 0 for the zero time,
// clamped to the range an int64 of nanoseconds can hold.
func nanos(t time.Time) int64 {
	switch {
	case t.IsZero():
		return 0
	case t.Before(minTime):
		return math.MinInt64
	case t.After(maxTime):
		return math.MaxInt64
	}
	return t.UnixNano()
}

// fromNanos is the inverse of nanos, in UTC.
func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// encoder encodes values for JSON columns and keeps the first error, so a
// statement's arguments can be built inline and checked once.
type encoder struct{ err error }

func (e *encoder) json(v any) string {
	b, err := json.Marshal(v)
	if err != nil && e.err == nil {
		e.err = err
	}
	return string(b)
}

// list encodes a slice; nil is stored as [] like an empty one.
func (e *encoder) list(v any) string {
	if s := e.json(v); s != "null" {
		return s
	}
	return "[]"
}

func (e *encoder) check() error {
	if e.err != nil {
		return gatehouse.Internal(e.err)
	}
	return nil
}

// fromJSON decodes a JSON column into v. A column that does not decode
// means the file was damaged or written by something else: internal.
//
// Callers set list targets to an empty slice first, so "[]" (every session
// and project token's scopes, most groups) skips the decoder: it is most
// of the cost of streaming tokens at start-up.
func fromJSON(s string, v any) error {
	if s == "" || s == "[]" {
		return nil
	}
	if err := json.Unmarshal([]byte(s), v); err != nil {
		return gatehouse.Internal(err)
	}
	return nil
}
