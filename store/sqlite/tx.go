package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
)

// tx implements gatehouse.Tx over one SQL transaction.
type tx struct {
	tx *sql.Tx
}

func (t *tx) exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	r, err := t.tx.ExecContext(ctx, q, args...)
	return r, wrap(err)
}

// execOne runs a statement that must change a row; none is ENOTFOUND.
func execOne(t *tx, ctx context.Context, what, q string, args ...any) error {
	r, err := t.exec(ctx, q, args...)
	if err != nil {
		return err
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

func notFound(err error, what string) error {
	if errors.Is(err, sql.ErrNoRows) {
		return gatehouse.Errorf(gatehouse.ENOTFOUND, "%s not found", what)
	}
	return wrap(err)
}

// ---- accounts

const accountCols = `name, enabled, capabilities, groups_json, created_at, password_hash`

func (t *tx) CreateAccount(ctx context.Context, a gatehouse.Account) error {
	_, err := t.exec(ctx, `INSERT INTO accounts (`+accountCols+`) VALUES ($1, $2, $3, $4, $5, $6)`,
		a.Name, a.Enabled, jsonOf(a.Capabilities), jsonOf(a.Groups), nanos(a.CreatedAt), a.PasswordHash)
	return err
}

func scanAccount(sc interface{ Scan(...any) error }) (gatehouse.Account, error) {
	var (
		a            gatehouse.Account
		caps, groups string
		created      int64
	)
	if err := sc.Scan(&a.Name, &a.Enabled, &caps, &groups, &created, &a.PasswordHash); err != nil {
		return a, err
	}
	a.CreatedAt = fromNanos(created)
	a.Capabilities = []gatehouse.Capability{}
	a.Groups = []string{}
	if err := fromJSON(caps, &a.Capabilities); err != nil {
		return a, err
	}
	return a, fromJSON(groups, &a.Groups)
}

func (t *tx) GetAccount(ctx context.Context, name string) (gatehouse.Account, error) {
	a, err := scanAccount(t.tx.QueryRowContext(ctx, `SELECT `+accountCols+` FROM accounts WHERE name = $1`, name))
	return a, notFound(err, "account")
}

func (t *tx) ListAccounts(ctx context.Context) ([]gatehouse.Account, error) {
	rows, err := t.tx.QueryContext(ctx, `SELECT `+accountCols+` FROM accounts ORDER BY name`)
	if err != nil {
		return nil, wrap(err)
	}
	defer rows.Close()
	out := []gatehouse.Account{}
	for rows.Next() {
		a, err := scanAccount(rows)
		if err != nil {
			return nil, wrap(err)
		}
		out = append(out, a)
	}
	return out, wrap(rows.Err())
}

func (t *tx) UpdateAccount(ctx context.Context, a gatehouse.Account) error {
	return execOne(t, ctx, "account", `UPDATE accounts SET enabled = $2, capabilities = $3, groups_json = $4, password_hash = $5 WHERE name = $1`,
		a.Name, a.Enabled, jsonOf(a.Capabilities), jsonOf(a.Groups), a.PasswordHash)
}

func (t *tx) DeleteAccount(ctx context.Context, name string) error {
	return execOne(t, ctx, "account", `DELETE FROM accounts WHERE name = $1`, name)
}

// ---- tokens

const tokenCols = `id, name, kind, account, project, role, scopes, issued_at, expires_at, last_used_at, last_used_from, created_by, hash`

func (t *tx) CreateToken(ctx context.Context, k gatehouse.Token) error {
	_, err := t.exec(ctx, `INSERT INTO tokens (`+tokenCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
		k.ID, k.Name, string(k.Kind), k.Account, k.Project, k.Role, jsonOf(k.Scopes),
		nanos(k.IssuedAt), nanos(k.ExpiresAt), nanos(k.LastUsedAt), k.LastUsedFrom, k.CreatedBy, k.Hash)
	return err
}

func scanToken(sc interface{ Scan(...any) error }) (gatehouse.Token, error) {
	var (
		k                      gatehouse.Token
		kind, scopes           string
		issued, expires, usedA int64
	)
	err := sc.Scan(&k.ID, &k.Name, &kind, &k.Account, &k.Project, &k.Role, &scopes,
		&issued, &expires, &usedA, &k.LastUsedFrom, &k.CreatedBy, &k.Hash)
	if err != nil {
		return k, err
	}
	k.Kind = gatehouse.TokenKind(kind)
	k.IssuedAt, k.ExpiresAt, k.LastUsedAt = fromNanos(issued), fromNanos(expires), fromNanos(usedA)
	k.Scopes = []gatehouse.Scope{}
	return k, fromJSON(scopes, &k.Scopes)
}

func (t *tx) GetToken(ctx context.Context, id string) (gatehouse.Token, error) {
	k, err := scanToken(t.tx.QueryRowContext(ctx, `SELECT `+tokenCols+` FROM tokens WHERE id = $1`, id))
	return k, notFound(err, "token")
}

// tokenWhere builds the WHERE clause of a filter.
func tokenWhere(f gatehouse.TokenFilter) (string, []any) {
	var (
		conds []string
		args  []any
	)
	add := func(cond string, v any) {
		args = append(args, v)
		conds = append(conds, strings.ReplaceAll(cond, "?", "$"+itoa(len(args))))
	}
	if f.ID != "" {
		add("id = ?", f.ID)
	}
	if f.Account != "" {
		add("account = ?", f.Account)
	}
	if f.Project != "" {
		add("project = ?", f.Project)
	}
	if f.Role != "" {
		add("role = ?", f.Role)
	}
	if f.Kind != "" {
		add("kind = ?", string(f.Kind))
	}
	if !f.IssuedBefore.IsZero() {
		add("issued_at < ?", nanos(f.IssuedBefore))
	}
	if !f.ExpiredBefore.IsZero() {
		add("(expires_at > 0 AND expires_at <= ?)", nanos(f.ExpiredBefore))
	}
	if f.ExceptID != "" {
		add("id <> ?", f.ExceptID)
	}
	if len(conds) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(conds, " AND "), args
}

func (t *tx) ListTokens(ctx context.Context, f gatehouse.TokenFilter) ([]gatehouse.Token, error) {
	where, args := tokenWhere(f)
	rows, err := t.tx.QueryContext(ctx, `SELECT `+tokenCols+` FROM tokens`+where+` ORDER BY issued_at DESC, id`, args...)
	if err != nil {
		return nil, wrap(err)
	}
	defer rows.Close()
	out := []gatehouse.Token{}
	for rows.Next() {
		k, err := scanToken(rows)
		if err != nil {
			return nil, wrap(err)
		}
		out = append(out, k)
	}
	return out, wrap(rows.Err())
}

func (t *tx) DeleteTokens(ctx context.Context, f gatehouse.TokenFilter) ([]gatehouse.Token, error) {
	gone, err := t.ListTokens(ctx, f)
	if err != nil || len(gone) == 0 {
		return gone, err
	}
	where, args := tokenWhere(f)
	_, err = t.exec(ctx, `DELETE FROM tokens`+where, args...)
	return gone, err
}

func (t *tx) SetTokenExpiry(ctx context.Context, id string, expiresAt time.Time) error {
	return execOne(t, ctx, "token", `UPDATE tokens SET expires_at = $2 WHERE id = $1`, id, nanos(expiresAt))
}

// ---- projects

func (t *tx) CreateProject(ctx context.Context, p gatehouse.Project) error {
	_, err := t.exec(ctx, `INSERT INTO projects (name, description, roles, created_at) VALUES ($1, $2, $3, $4)`,
		p.Name, p.Description, jsonOf(p.Roles), nanos(p.CreatedAt))
	return err
}

func scanProject(sc interface{ Scan(...any) error }) (gatehouse.Project, error) {
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
	p, err := scanProject(t.tx.QueryRowContext(ctx, `SELECT name, description, roles, created_at FROM projects WHERE name = $1`, name))
	return p, notFound(err, "project")
}

func (t *tx) ListProjects(ctx context.Context) ([]gatehouse.Project, error) {
	rows, err := t.tx.QueryContext(ctx, `SELECT name, description, roles, created_at FROM projects ORDER BY name`)
	if err != nil {
		return nil, wrap(err)
	}
	defer rows.Close()
	out := []gatehouse.Project{}
	for rows.Next() {
		p, err := scanProject(rows)
		if err != nil {
			return nil, wrap(err)
		}
		out = append(out, p)
	}
	return out, wrap(rows.Err())
}

func (t *tx) UpdateProject(ctx context.Context, p gatehouse.Project) error {
	return execOne(t, ctx, "project", `UPDATE projects SET description = $2, roles = $3 WHERE name = $1`,
		p.Name, p.Description, jsonOf(p.Roles))
}

func (t *tx) DeleteProject(ctx context.Context, name string) error {
	return execOne(t, ctx, "project", `DELETE FROM projects WHERE name = $1`, name)
}

// ---- applications

const appCols = `name, project, spec, status, created_at`

func (t *tx) CreateApplication(ctx context.Context, a gatehouse.Application) error {
	_, err := t.exec(ctx, `INSERT INTO applications (`+appCols+`) VALUES ($1, $2, $3, $4, $5)`,
		a.Name, a.Project, jsonOf(a.Spec), jsonOf(a.Status), nanos(a.CreatedAt))
	return err
}

func scanApp(sc interface{ Scan(...any) error }) (gatehouse.Application, error) {
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
	a.Status.ReportedAt = utc(a.Status.ReportedAt)
	return a, nil
}

func (t *tx) GetApplication(ctx context.Context, name string) (gatehouse.Application, error) {
	a, err := scanApp(t.tx.QueryRowContext(ctx, `SELECT `+appCols+` FROM applications WHERE name = $1`, name))
	return a, notFound(err, "application")
}

func (t *tx) ListApplications(ctx context.Context, project string) ([]gatehouse.Application, error) {
	q, args := `SELECT `+appCols+` FROM applications ORDER BY name`, []any{}
	if project != "" {
		q, args = `SELECT `+appCols+` FROM applications WHERE project = $1 ORDER BY name`, []any{project}
	}
	rows, err := t.tx.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, wrap(err)
	}
	defer rows.Close()
	out := []gatehouse.Application{}
	for rows.Next() {
		a, err := scanApp(rows)
		if err != nil {
			return nil, wrap(err)
		}
		out = append(out, a)
	}
	return out, wrap(rows.Err())
}

func (t *tx) UpdateApplication(ctx context.Context, a gatehouse.Application) error {
	return execOne(t, ctx, "application", `UPDATE applications SET project = $2, spec = $3, status = $4 WHERE name = $1`,
		a.Name, a.Project, jsonOf(a.Spec), jsonOf(a.Status))
}

func (t *tx) DeleteApplication(ctx context.Context, name string) error {
	if _, err := t.exec(ctx, `DELETE FROM operations WHERE application = $1`, name); err != nil {
		return err
	}
	return execOne(t, ctx, "application", `DELETE FROM applications WHERE name = $1`, name)
}

// ---- operations

const opCols = `id, application, state, revision, prune, dry_run, requested_by, created_at, updated_at, message`

func (t *tx) CreateOperation(ctx context.Context, op gatehouse.Operation) error {
	_, err := t.exec(ctx, `INSERT INTO operations (`+opCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		op.ID, op.Application, op.State, op.Revision, op.Prune, op.DryRun, op.RequestedBy,
		nanos(op.CreatedAt), nanos(op.UpdatedAt), op.Message)
	return err
}

func scanOp(sc interface{ Scan(...any) error }) (gatehouse.Operation, error) {
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
	return op, notFound(err, "operation")
}

func (t *tx) ListOperations(ctx context.Context, app, state string) ([]gatehouse.Operation, error) {
	q := `SELECT ` + opCols + ` FROM operations WHERE application = $1 AND ($2 = '' OR state = $2) ORDER BY created_at DESC, rowid DESC`
	rows, err := t.tx.QueryContext(ctx, q, app, state)
	if err != nil {
		return nil, wrap(err)
	}
	defer rows.Close()
	out := []gatehouse.Operation{}
	for rows.Next() {
		op, err := scanOp(rows)
		if err != nil {
			return nil, wrap(err)
		}
		out = append(out, op)
	}
	return out, wrap(rows.Err())
}

func (t *tx) UpdateOperation(ctx context.Context, op gatehouse.Operation) error {
	return execOne(t, ctx, "operation", `UPDATE operations SET state = $3, message = $4, updated_at = $5 WHERE application = $1 AND id = $2`,
		op.Application, op.ID, op.State, op.Message, nanos(op.UpdatedAt))
}

// ---- RBAC

func (t *tx) GetRBAC(ctx context.Context) (gatehouse.RBAC, error) {
	var r gatehouse.RBAC
	err := t.tx.QueryRowContext(ctx, `SELECT policy_csv, policy_default, scopes, match_mode FROM rbac WHERE id = 1`).
		Scan(&r.PolicyCSV, &r.PolicyDefault, &r.Scopes, &r.MatchMode)
	return r, notFound(err, "rbac settings")
}

func (t *tx) PutRBAC(ctx context.Context, r gatehouse.RBAC) error {
	_, err := t.exec(ctx, `INSERT INTO rbac (id, policy_csv, policy_default, scopes, match_mode) VALUES (1, $1, $2, $3, $4)
		ON CONFLICT (id) DO UPDATE SET policy_csv = excluded.policy_csv, policy_default = excluded.policy_default,
		scopes = excluded.scopes, match_mode = excluded.match_mode`,
		r.PolicyCSV, r.PolicyDefault, r.Scopes, r.MatchMode)
	return err
}

// ---- events

const eventCols = `time, type, actor, token_id, token_kind, method, path, resource, action, object, decision, status, remote_addr, user_agent, detail`

func (t *tx) AppendEvents(ctx context.Context, events []gatehouse.Event) error {
	if len(events) == 0 {
		return nil
	}
	stmt, err := t.tx.PrepareContext(ctx, `INSERT INTO events (`+eventCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`)
	if err != nil {
		return wrap(err)
	}
	defer stmt.Close()
	for _, e := range events {
		if _, err := stmt.ExecContext(ctx, nanos(e.Time), e.Type, e.Actor, e.TokenID, string(e.TokenKind), e.Method, e.Path,
			e.Resource, e.Action, e.Object, e.Decision, e.Status, e.RemoteAddr, e.UserAgent, e.Detail); err != nil {
			return wrap(err)
		}
	}
	return nil
}

func (t *tx) ListEvents(ctx context.Context, f gatehouse.EventFilter) ([]gatehouse.Event, error) {
	var (
		conds []string
		args  []any
	)
	add := func(cond string, v any) {
		args = append(args, v)
		conds = append(conds, strings.ReplaceAll(cond, "?", "$"+itoa(len(args))))
	}
	if f.Actor != "" {
		add("actor = ?", f.Actor)
	}
	if f.TokenID != "" {
		add("token_id = ?", f.TokenID)
	}
	if f.Type != "" {
		add("type = ?", f.Type)
	}
	if f.Action != "" {
		add("action = ?", f.Action)
	}
	if f.Decision != "" {
		add("decision = ?", f.Decision)
	}
	if !f.Since.IsZero() {
		add("time >= ?", nanos(f.Since))
	}
	if !f.Until.IsZero() {
		add("time < ?", nanos(f.Until))
	}
	if f.BeforeID > 0 {
		add("id < ?", f.BeforeID)
	}
	q := `SELECT id, ` + eventCols + ` FROM events`
	if len(conds) > 0 {
		q += " WHERE " + strings.Join(conds, " AND ")
	}
	q += " ORDER BY id DESC"
	if f.Limit > 0 {
		q += " LIMIT " + itoa(f.Limit)
	}
	rows, err := t.tx.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, wrap(err)
	}
	defer rows.Close()
	out := []gatehouse.Event{}
	for rows.Next() {
		var (
			e    gatehouse.Event
			tm   int64
			kind string
		)
		if err := rows.Scan(&e.ID, &tm, &e.Type, &e.Actor, &e.TokenID, &kind, &e.Method, &e.Path, &e.Resource,
			&e.Action, &e.Object, &e.Decision, &e.Status, &e.RemoteAddr, &e.UserAgent, &e.Detail); err != nil {
			return nil, wrap(err)
		}
		e.Time, e.TokenKind = fromNanos(tm), gatehouse.TokenKind(kind)
		out = append(out, e)
	}
	return out, wrap(rows.Err())
}

func (t *tx) PruneEvents(ctx context.Context, before time.Time) (int, error) {
	r, err := t.exec(ctx, `DELETE FROM events WHERE time < $1`, nanos(before))
	if err != nil {
		return 0, err
	}
	n, err := r.RowsAffected()
	return int(n), wrap(err)
}

// ---- encoding helpers

func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

func utc(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC()
}

func jsonOf(v any) string {
	b, err := json.Marshal(v)
	if err != nil || string(b) == "null" {
		return "[]"
	}
	return string(b)
}

func fromJSON(s string, v any) error {
	if s == "" || s == "null" {
		return nil
	}
	if err := json.Unmarshal([]byte(s), v); err != nil {
		return gatehouse.Internal(err)
	}
	return nil
}

func itoa(n int) string { return strconv.Itoa(n) }
