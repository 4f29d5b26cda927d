package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/gatehouse/gatehouse"
)

// tx implements gatehouse.Tx over one PostgreSQL transaction.
//
// The errors the contract defines (ECONFLICT, ENOTFOUND) leave the
// transaction usable, as they do on SQLite: a failed statement would abort
// a PostgreSQL transaction, so inserts use ON CONFLICT DO NOTHING and
// report zero rows, and lookups report zero rows, instead of failing.
type tx struct {
	tx pgx.Tx
	// retry is the first serialization failure or deadlock a statement hit.
	// PostgreSQL has aborted the transaction then, whatever fn does with
	// the error; withTx runs fn again.
	retry error
	// readOnly is set in a View: PostgreSQL's refusal of a write there
	// (25006) is the caller's bug, not a read-only server.
	readOnly bool
	// chainConflict is set when taking the audit chain's head failed with
	// a serialization failure (chain.go): the retry takes it first.
	chainConflict bool
}

var _ gatehouse.Tx = (*tx)(nil)

// scanner is what pgx.Row and pgx.Rows have in common.
type scanner interface{ Scan(...any) error }

// fail records a retryable error and returns err as a *gatehouse.Error.
func (t *tx) fail(err error) error {
	if err != nil && t.retry == nil && retryable(err) {
		t.retry = err
	}
	var pe *pgconn.PgError
	if t.readOnly && errors.As(err, &pe) && pe.Code == readOnlyTransaction {
		return gatehouse.Internal(fmt.Errorf("write in a read-only View: %w", err))
	}
	return wrap(err)
}

// args makes the string arguments storable. PostgreSQL text holds valid
// UTF-8 without NUL bytes and refuses anything else, which would fail the
// whole statement (an audit batch, say, because one request path had a
// %00 or a user agent a stray byte). SQLite stores any bytes; here each NUL
// and each run of invalid bytes becomes U+FFFD, the same for a value
// written and a value looked up, so a write never fails for its text.
func (t *tx) args(args ...any) []any {
	for i, a := range args {
		if s, ok := a.(string); ok {
			args[i] = storable(s)
		}
	}
	return args
}

func storable(s string) string {
	if utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}

func (t *tx) exec(ctx context.Context, q string, args ...any) (pgconn.CommandTag, error) {
	tag, err := t.tx.Exec(ctx, q, t.args(args...)...)
	return tag, t.fail(err)
}

// execOne runs a statement that must change one row; none is ENOTFOUND.
func (t *tx) execOne(ctx context.Context, what, q string, args ...any) error {
	tag, err := t.exec(ctx, q, args...)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return gatehouse.Errorf(gatehouse.ENOTFOUND, "%s not found", what)
	}
	return nil
}

// insert runs an INSERT that skips a row whose key is taken and reports
// that as ECONFLICT with msg, which must be safe to show to a client.
func (t *tx) insert(ctx context.Context, msg, q string, args ...any) error {
	tag, err := t.exec(ctx, q+` ON CONFLICT DO NOTHING`, args...)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return gatehouse.Errorf(gatehouse.ECONFLICT, "%s", msg)
	}
	return nil
}

// batch sends b in one round trip and reads every result.
func (t *tx) batch(ctx context.Context, b *pgx.Batch) error {
	br := t.tx.SendBatch(ctx, b)
	for range b.Len() {
		if _, err := br.Exec(); err != nil {
			br.Close()
			return t.fail(err)
		}
	}
	return t.fail(br.Close())
}

// list runs a query and scans every row with scan. It never returns a nil
// slice, so an empty list encodes as [] in JSON.
func list[T any](ctx context.Context, t *tx, scan func(scanner) (T, error), q string, args ...any) ([]T, error) {
	rows, err := t.tx.Query(ctx, q, t.args(args...)...)
	if err != nil {
		return nil, t.fail(err)
	}
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, scanFailed(err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, t.fail(err)
	}
	return out, nil
}

// get runs a query for one row; no row is ENOTFOUND ("<what> not found").
func get[T any](ctx context.Context, t *tx, what string, scan func(scanner) (T, error), q string, args ...any) (T, error) {
	vs, err := list(ctx, t, scan, q, args...)
	var zero T
	switch {
	case err != nil:
		return zero, err
	case len(vs) == 0:
		return zero, gatehouse.Errorf(gatehouse.ENOTFOUND, "%s not found", what)
	}
	return vs[0], nil
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
	return t.insert(ctx, "account "+strconv.Quote(a.Name)+" already exists",
		`INSERT INTO accounts (`+accountCols+`, sso_issuer, sso_subject) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
		a.Name, a.Enabled, caps, groups, nanos(a.CreatedAt), nonNil(a.PasswordHash),
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
	return get(ctx, t, "account", scanAccount, `SELECT `+accountCols+` FROM accounts WHERE name = $1`, name)
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
		a.Name, a.Enabled, caps, groups, nonNil(a.PasswordHash), a.Source, nanos(a.LastLoginAt), nanos(a.GroupsRefreshedAt), link,
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
	var e encoder
	scopes := e.list(k.Scopes)
	if err := e.check(); err != nil {
		return err
	}
	return t.insert(ctx, "token "+strconv.Quote(k.ID)+" already exists",
		`INSERT INTO tokens (`+tokenCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)`,
		k.ID, k.Name, string(k.Kind), k.Account, k.Project, k.Role, scopes,
		nanos(k.IssuedAt), nanos(k.ExpiresAt), nanos(k.LastUsedAt), k.LastUsedFrom, k.CreatedBy, nonNil(k.Hash),
		k.IdleTimeout, k.SelfRotate, k.Family, nonNil(k.TextHash))
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
	return get(ctx, t, "token", scanToken, `SELECT `+tokenCols+` FROM tokens WHERE id = $1`, id)
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
		w.add("(idle_timeout > 0 AND GREATEST(last_used_at, issued_at) + idle_timeout * 1000000000 <= ?)", nanos(f.IdleAt))
	}
	return w
}

// ListTokens returns the matching tokens, newest first.
func (t *tx) ListTokens(ctx context.Context, f gatehouse.TokenFilter) ([]gatehouse.Token, error) {
	w := tokenWhere(f)
	return list(ctx, t, scanToken, `SELECT `+tokenCols+` FROM tokens`+w.String()+` ORDER BY issued_at DESC, id`, w.args...)
}

// DeleteTokens deletes the matching tokens and returns them, newest first,
// in one statement: what it returns is exactly what it deleted.
func (t *tx) DeleteTokens(ctx context.Context, f gatehouse.TokenFilter) ([]gatehouse.Token, error) {
	w := tokenWhere(f)
	return list(ctx, t, scanToken, `WITH gone AS (DELETE FROM tokens`+w.String()+` RETURNING `+tokenCols+`)
		SELECT `+tokenCols+` FROM gone ORDER BY issued_at DESC, id`, w.args...)
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
	return t.insert(ctx, "project "+strconv.Quote(p.Name)+" already exists",
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
	return get(ctx, t, "project", scanProject, `SELECT `+projectCols+` FROM projects WHERE name = $1`, name)
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
	return t.insert(ctx, "application "+strconv.Quote(a.Name)+" already exists",
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
	return get(ctx, t, "application", scanApp, `SELECT `+appCols+` FROM applications WHERE name = $1`, name)
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

// DeleteApplication deletes the application; its operations go with it
// (ON DELETE CASCADE).
func (t *tx) DeleteApplication(ctx context.Context, name string) error {
	return t.execOne(ctx, "application", `DELETE FROM applications WHERE name = $1`, name)
}

// ---- operations

const opCols = `id, application, state, revision, prune, dry_run, requested_by, created_at, updated_at, message`

// CreateOperation returns ENOTFOUND when the application does not exist.
// The insert checks for it rather than letting the foreign key fail, which
// would abort the transaction.
func (t *tx) CreateOperation(ctx context.Context, op gatehouse.Operation) error {
	err := t.insert(ctx, "operation "+strconv.Quote(op.ID)+" already exists",
		`INSERT INTO operations (`+opCols+`)
		SELECT $1::text, $2::text, $3::text, $4::text, $5::boolean, $6::boolean, $7::text, $8::bigint, $9::bigint, $10::text
		WHERE EXISTS (SELECT 1 FROM applications WHERE name = $2)`,
		op.ID, op.Application, op.State, op.Revision, op.Prune, op.DryRun, op.RequestedBy,
		nanos(op.CreatedAt), nanos(op.UpdatedAt), op.Message)
	if !gatehouse.IsCode(err, gatehouse.ECONFLICT) {
		return err
	}
	// Nothing inserted: a taken id, or no such application.
	if _, err := t.GetApplication(ctx, op.Application); err != nil {
		return err
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
	return get(ctx, t, "operation", scanOp, `SELECT `+opCols+` FROM operations WHERE application = $1 AND id = $2`, app, id)
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
	return get(ctx, t, "RBAC settings", func(sc scanner) (gatehouse.RBAC, error) {
		var r gatehouse.RBAC
		return r, sc.Scan(&r.PolicyCSV, &r.PolicyDefault, &r.Scopes, &r.MatchMode)
	}, `SELECT policy_csv, policy_default, scopes, match_mode FROM rbac WHERE id = 1`)
}

func (t *tx) PutRBAC(ctx context.Context, r gatehouse.RBAC) error {
	_, err := t.exec(ctx, `INSERT INTO rbac (id, policy_csv, policy_default, scopes, match_mode) VALUES (1, $1, $2, $3, $4)
		ON CONFLICT (id) DO UPDATE SET policy_csv = excluded.policy_csv, policy_default = excluded.policy_default,
		scopes = excluded.scopes, match_mode = excluded.match_mode`,
		r.PolicyCSV, r.PolicyDefault, r.Scopes, r.MatchMode)
	return err
}

// ---- events

const eventCols = `time, type, actor, token_id, token_kind, method, path, resource, action, object, decision, status, remote_addr, user_agent, detail, via, route, account, count`

func (t *tx) AppendEvents(ctx context.Context, events []gatehouse.Event) error {
	return t.appendEvents(ctx, events)
}

// eventRows is how many events one INSERT carries (22 parameters each,
// far under PostgreSQL's 65,535): one statement of many rows is parsed,
// planned and executed once instead of once a row.
const eventRows = 100

// eventParams is the number of parameters of one event's row: its id,
// eventCols and its two links.
const eventParams = 22

// insertEvents is the INSERT of n events with their ids and chain links,
// numbered $1 ... $22n.
func insertEvents(n int) string {
	var b strings.Builder
	b.WriteString(`INSERT INTO events (id, ` + eventCols + `, prev_hash, hash) OVERRIDING SYSTEM VALUE VALUES `)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('(')
		for c := range eventParams {
			if c > 0 {
				b.WriteByte(',')
			}
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(i*eventParams + c + 1))
		}
		b.WriteByte(')')
	}
	return b.String()
}

var insertFull = insertEvents(eventRows)

// appendEvents chains a batch (chain.go): it locks the chain's head, takes
// ids from the events sequence, and then inserts the rows, eventRows a
// statement, and moves the head, in one round trip.
func (t *tx) appendEvents(ctx context.Context, events []gatehouse.Event) error {
	if len(events) == 0 {
		return nil
	}
	prev, err := t.lockChainHead(ctx)
	if err != nil {
		return err
	}
	ids, err := t.eventIDs(ctx, len(events))
	if err != nil {
		return err
	}
	var (
		hasher gatehouse.ChainHasher
		last   int64
	)
	b := &pgx.Batch{}
	for len(events) > 0 {
		n := min(len(events), eventRows)
		q := insertFull
		if n < eventRows {
			q = insertEvents(n)
		}
		args := make([]any, 0, eventParams*n)
		for _, e := range events[:n] {
			e = stored(e)
			e.ID, ids = ids[0], ids[1:]
			hash := hasher.Next(prev, e)
			link := make([]byte, 64)
			copy(link, prev[:])
			copy(link[32:], hash[:])
			prev, last = hash, e.ID
			args = append(args, e.ID, nanos(e.Time), e.Type, e.Actor, e.TokenID, string(e.TokenKind), e.Method, e.Path,
				e.Resource, e.Action, e.Object, e.Decision, e.Status, e.RemoteAddr, e.UserAgent, e.Detail, e.Via, e.Route, e.Account,
				e.Requests(), link[:32], link[32:])
		}
		b.Queue(q, t.args(args...)...)
		events = events[n:]
	}
	b.Queue(`UPDATE audit_chain SET head_id = $1, head_hash = $2 WHERE id = 1`, last, prev[:])
	return t.batch(ctx, b)
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

// PruneEvents deletes the events that come before (in id order) the first
// event at or after before, and returns how many. Ids follow time (events
// are appended as they happen), so that walks only the old events and needs
// no index on time, which would tax every insert.
func (t *tx) PruneEvents(ctx context.Context, before time.Time) (int, error) {
	//
	// The last event deleted becomes the chain's start (chain.go), under
	// the chain's lock, which appenders take before their ids: none of
	// theirs can fall below the cutoff.
	if _, err := t.lockChainHead(ctx); err != nil {
		return 0, err
	}
	var cutoff int64
	if err := t.tx.QueryRow(ctx, `SELECT COALESCE(
		(SELECT id FROM events WHERE time >= $1 ORDER BY id LIMIT 1),
		(SELECT COALESCE(MAX(id), 0) + 1 FROM events))`, nanos(before)).Scan(&cutoff); err != nil {
		return 0, t.fail(err)
	}
	if _, err := t.exec(ctx, `UPDATE audit_chain AS c SET start_id = e.id, start_hash = COALESCE(e.hash, decode(repeat('00', 32), 'hex'))
		FROM (SELECT id, hash FROM events WHERE id < $1 ORDER BY id DESC LIMIT 1) AS e
		WHERE c.id = 1 AND e.id > c.start_id`, cutoff); err != nil {
		return 0, err
	}
	tag, err := t.exec(ctx, `DELETE FROM events WHERE id < $1`, cutoff)
	if err != nil {
		return 0, err
	}
	return int(tag.RowsAffected()), nil
}

// ---- change feed

// changesChannel is the NOTIFY channel of the change feed; the payload is
// the greatest seq of the commit, in decimal.
const changesChannel = "gatehouse_changes"

const changeCols = `seq, kind, key, at`

// RecordChanges advances change_head by len(changes), appends the changes
// with the seqs it hands out and queues a notification carrying the
// greatest, all in one statement (data-modifying CTEs always run).
//
// The UPDATE locks change_head's row until the transaction ends, so a
// concurrent recorder waits for this one and then, at SERIALIZABLE, fails
// with a serialization failure and is retried on a snapshot that includes
// this commit: a greater seq always commits later. PostgreSQL delivers the
// notification at commit and drops it on rollback.
func (t *tx) RecordChanges(ctx context.Context, changes []gatehouse.Change) error {
	if len(changes) == 0 {
		return nil
	}
	kinds := make([]string, len(changes))
	keys := make([]string, len(changes))
	for i, c := range changes {
		kinds[i], keys[i] = storable(string(c.Kind)), storable(c.Key)
	}
	var head int64
	err := t.tx.QueryRow(ctx, `WITH head AS (
			UPDATE change_head SET seq = seq + $1 RETURNING seq
		), added AS (
			INSERT INTO changes (`+changeCols+`)
			SELECT head.seq - $1 + c.n, c.kind, c.key, $4
			FROM head, unnest($2::text[], $3::text[]) WITH ORDINALITY AS c (kind, key, n)
		)
		SELECT seq, pg_notify('`+changesChannel+`', seq::text) FROM head`,
		int64(len(changes)), kinds, keys, nanos(time.Now())).Scan(&head, nil)
	if errors.Is(err, pgx.ErrNoRows) {
		return gatehouse.Internal(errors.New("change_head is empty"))
	}
	return t.fail(err)
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
// At SERIALIZABLE those index reads are what a concurrent AddLoginAttempt
// under the same key conflicts with.
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
	}, `SELECT at FROM login_attempts WHERE key = $1 AND failed AND at > $2 ORDER BY at DESC LIMIT $3`, key, since, limit)
	if err != nil {
		return tally, err
	}
	slices.Reverse(failed)
	tally.Failed = failed
	err = t.tx.QueryRow(ctx, `SELECT COUNT(*) FROM (
		SELECT 1 FROM login_attempts WHERE key = $1 AND NOT failed AND at > $2 LIMIT $3) AS p`,
		t.args(key, since, limit)...).Scan(&tally.Pending)
	return tally, t.fail(err)
}

// AddLoginAttempt inserts one pending row per key, in one statement that
// inserts nothing when a row has the id already.
func (t *tx) AddLoginAttempt(ctx context.Context, a gatehouse.LoginAttempt) error {
	if len(a.Keys) == 0 {
		return nil
	}
	keys := make([]string, len(a.Keys))
	for i, k := range a.Keys {
		keys[i] = storable(k)
	}
	tag, err := t.exec(ctx, `INSERT INTO login_attempts (id, key, at, failed)
		SELECT $1, k, $3, false FROM unnest($2::text[]) AS k
		WHERE NOT EXISTS (SELECT 1 FROM login_attempts WHERE id = $1)
		ON CONFLICT DO NOTHING`,
		a.ID, keys, nanos(a.At))
	if err != nil {
		return err
	}
	if tag.RowsAffected() != int64(len(keys)) {
		return gatehouse.Errorf(gatehouse.ECONFLICT, "login attempt %q already exists", a.ID)
	}
	return nil
}

func (t *tx) FailLoginAttempt(ctx context.Context, id string) error {
	_, err := t.exec(ctx, `UPDATE login_attempts SET failed = true WHERE id = $1`, id)
	return err
}

func (t *tx) DeleteLoginAttempt(ctx context.Context, id string) error {
	_, err := t.exec(ctx, `DELETE FROM login_attempts WHERE id = $1`, id)
	return err
}

func (t *tx) ClearLoginFailures(ctx context.Context, key string) error {
	_, err := t.exec(ctx, `DELETE FROM login_attempts WHERE key = $1 AND failed`, key)
	return err
}

func (t *tx) PruneLoginAttempts(ctx context.Context, before time.Time) (int, error) {
	tag, err := t.exec(ctx, `DELETE FROM login_attempts WHERE at <= $1`, nanos(before))
	if err != nil {
		return 0, err
	}
	return int(tag.RowsAffected()), nil
}

// ---- encoding

var (
	minTime = time.Unix(0, math.MinInt64)
	maxTime = time.Unix(0, math.MaxInt64)
)

// nanos is the stored form of t: Unix nanoseconds, 0 for the zero time,
// clamped to the range an int64 of nanoseconds can hold. It is SQLite's
// encoding too, so both backends keep the same instants.
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

// nonNil binds b as a non-NULL bytea: pgx sends a nil slice as NULL.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
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
// means the row was damaged or written by something else: internal.
// Callers set list targets to an empty slice first, so "[]" skips the
// decoder.
func fromJSON(s string, v any) error {
	if s == "" || s == "[]" {
		return nil
	}
	if err := json.Unmarshal([]byte(s), v); err != nil {
		return gatehouse.Internal(err)
	}
	return nil
}
