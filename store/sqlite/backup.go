package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/store/internal/readonly"
)

var _ gatehouse.Snapshotter = (*Store)(nil)

// sidecars are the files SQLite keeps beside a database: its write-ahead
// log, the log's shared-memory index, and a rollback journal.
var sidecars = []string{"-wal", "-shm", "-journal"}

// snapshotPrefix and snapshotSuffix frame the name of a snapshot's file
// beside the database while VACUUM INTO writes it, so that a server
// starting after a crash knows what to remove (RemoveStaleSnapshots).
const (
	snapshotPrefix = ".snapshot-"
	snapshotSuffix = ".tmp"
)

// snapshotMargin is the free space a snapshot must leave in the data
// directory beyond its own size, at least: the server goes on writing
// while the copy exists.
const snapshotMargin = 64 << 20

// Snapshot copies the database, as of its last commit, into a new file in
// its directory with VACUUM INTO, on the read-only handle: a read
// transaction that no writer waits for. The copy is a complete database on
// its own (no write-ahead log, mode 0600) that Open and Verify take as it
// is. Its name is removed as soon as it is open, so the returned file is
// all that is left of it and closing it frees the space.
//
// The copy is as large as the database at most, so a directory with less
// free space than that and a margin (a tenth of it, at least 64 MiB) is
// refused, EUNAVAILABLE, before anything is written: a full disk would
// fail the server's own writes too.
func (s *Store) Snapshot(ctx context.Context) (gatehouse.Snapshot, error) {
	if err := s.checkFiles(); err != nil {
		return nil, err
	}
	db := s.files[0].path
	if err := s.checkSpace(db); err != nil {
		return nil, err
	}
	// CreateTemp makes the file 0600; VACUUM INTO takes an empty file
	// that exists and keeps its mode.
	f, err := os.CreateTemp(filepath.Dir(db), "."+filepath.Base(db)+snapshotPrefix+"*"+snapshotSuffix)
	if err != nil {
		return nil, errUnavailable(fmt.Errorf("snapshot: %w", err))
	}
	tmp := f.Name()
	f.Close()
	defer os.Remove(tmp)
	if _, err := s.ro.ExecContext(ctx, `VACUUM INTO $1`, tmp); err != nil {
		return nil, wrap(fmt.Errorf("snapshot: %w", err))
	}
	// A database replaced while it was copied is not the one this store
	// answers for.
	if err := s.checkFiles(); err != nil {
		return nil, err
	}
	f, err = os.Open(tmp)
	if err != nil {
		return nil, errUnavailable(fmt.Errorf("snapshot: %w", err))
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, errUnavailable(fmt.Errorf("snapshot: %w", err))
	}
	return snapshotFile{File: f, size: fi.Size()}, nil
}

// checkSpace refuses a snapshot of db that the free space beside it may
// not hold.
func (s *Store) checkSpace(db string) error {
	var size int64
	for _, p := range []string{db, db + "-wal"} {
		if fi, err := os.Stat(p); err == nil {
			size += fi.Size()
		}
	}
	need := size + max(size/10, snapshotMargin)
	free, err := s.freeSpace(filepath.Dir(db))
	if err != nil {
		return nil // VACUUM INTO will tell
	}
	if free < uint64(need) {
		return &gatehouse.Error{Code: gatehouse.EUNAVAILABLE,
			Message: fmt.Sprintf("not enough free space in the server's data directory for a backup: its copy needs up to %s (the database and a margin), %s are free; free some space there, or stop the server and copy its database file",
				mebibytes(uint64(need)), mebibytes(free))}
	}
	return nil
}

// freeSpace is the space an unprivileged process may still write in dir.
func freeSpace(dir string) (uint64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return uint64(st.Bavail) * uint64(st.Bsize), nil
}

func mebibytes(n uint64) string {
	return strconv.FormatUint((n+(1<<20)-1)>>20, 10) + " MiB"
}

// RemoveStaleSnapshots removes the files that snapshots of the database
// at db left beside it when their process died while writing them (a
// snapshot removes its own file's name otherwise). Call it only while no
// process uses the database: it would take a running snapshot's file.
func RemoveStaleSnapshots(db string) ([]string, error) {
	stale, err := filepath.Glob(filepath.Join(filepath.Dir(db), "."+globEscape(filepath.Base(db))+snapshotPrefix+"*"+snapshotSuffix))
	if err != nil {
		return nil, err
	}
	var removed []string
	var errs []error
	for _, p := range stale {
		if fi, err := os.Lstat(p); err != nil || !fi.Mode().IsRegular() {
			continue
		}
		if err := os.Remove(p); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, p)
	}
	return removed, errors.Join(errs...)
}

// globEscape quotes the characters filepath.Match gives a meaning.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

type snapshotFile struct {
	*os.File
	size int64
}

func (f snapshotFile) Size() int64 { return f.size }

// BackupInfo is what Verify found in a backup.
type BackupInfo struct {
	Version  int // schema version: the migrations it has
	Latest   int // the schema version of this binary, which Open brings it to
	Accounts int
	Tokens   int
}

// NotABackupError is Verify's refusal: the file is not a Gatehouse store
// this binary can restore. Its message says why, without the file's data.
type NotABackupError struct {
	Path   string
	Reason string
}

func (e *NotABackupError) Error() string {
	return fmt.Sprintf("%s is not a Gatehouse backup that this binary can restore: %s", e.Path, e.Reason)
}

// Verify checks, without changing anything, that the file at path is a
// Gatehouse SQLite store this binary can open: a regular file holding a
// SQLite database on its own (no write-ahead log or journal beside it,
// which would hold commits the file lacks), that passes SQLite's
// integrity check, records migrations that are this binary's own, no newer
// than it knows, and has exactly the tables, columns and indexes those
// migrations make, and nothing else (no trigger or view to run). The file
// is opened read-only and immutable: nothing is written next to it.
func Verify(ctx context.Context, file string) (BackupInfo, error) {
	refuse := func(format string, args ...any) (BackupInfo, error) {
		return BackupInfo{}, &NotABackupError{Path: file, Reason: fmt.Sprintf(format, args...)}
	}
	fi, err := os.Stat(file)
	if err != nil {
		return BackupInfo{}, fmt.Errorf("backup: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return refuse("not a regular file")
	}
	f, err := os.Open(file)
	if err != nil {
		return BackupInfo{}, fmt.Errorf("backup: %w", err)
	}
	head := make([]byte, 100)
	_, err = io.ReadFull(f, head)
	f.Close()
	if err != nil || !bytes.HasPrefix(head, []byte("SQLite format 3\x00")) {
		return refuse("not a SQLite database")
	}
	for _, suffix := range sidecars {
		if fi, err := os.Stat(file + suffix); err == nil && fi.Size() > 0 {
			return refuse("%s is beside it: it is a live database (or a copy taken without that file), not a backup; take one with gatehouse admin backup, or stop the server that uses it first", filepath.Base(file+suffix))
		}
	}

	db, err := sql.Open("sqlite", immutableDSN(file))
	if err != nil {
		return BackupInfo{}, fmt.Errorf("backup: %w", err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)

	problems, err := integrityCheck(ctx, db)
	if err != nil {
		return refuse("SQLite cannot read it (%v)", err)
	}
	if len(problems) > 0 {
		return refuse("it fails SQLite's integrity check (%s)", problems[0])
	}

	names, err := migrationNames(migrations)
	if err != nil {
		return BackupInfo{}, err
	}
	recorded, err := recordedMigrations(ctx, db)
	var seq *sequenceError
	if errors.As(err, &seq) {
		return refuse("its schema_migrations table is out of sequence (%v), so it is not a Gatehouse store", err)
	}
	if err != nil {
		return refuse("it has no readable schema_migrations table, so it is not a Gatehouse store")
	}
	if len(recorded) == 0 {
		return refuse("it records no schema migration, so it is not a Gatehouse store")
	}
	if problem := migrationsDiffer(recorded, names); problem != "" {
		return refuse("%s", problem)
	}
	got, err := readSchema(ctx, db)
	if err != nil {
		return refuse("its schema cannot be read (%v)", err)
	}
	want, err := expectedSchema(ctx, len(recorded))
	if err != nil {
		return BackupInfo{}, fmt.Errorf("backup: the schema of version %d: %w", len(recorded), err)
	}
	if problem := want.differs(got); problem != "" {
		return refuse("its schema is not Gatehouse's schema version %d (%s)", len(recorded), problem)
	}

	info := BackupInfo{Version: len(recorded), Latest: len(names)}
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM accounts`).Scan(&info.Accounts); err != nil {
		return refuse("its accounts cannot be read (%v)", err)
	}
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM tokens`).Scan(&info.Tokens); err != nil {
		return refuse("its tokens cannot be read (%v)", err)
	}
	return info, nil
}

// migrationsDiffer names how recorded, the migrations a database
// records, are not the first of this binary's names; "" when they are.
func migrationsDiffer(recorded, names []string) string {
	for i, name := range recorded {
		if i >= len(names) {
			return fmt.Sprintf("it was written by a newer gatehouse (schema version %d; this binary knows up to %d): restore it with that version or a newer one", len(recorded), len(names))
		}
		if name != path.Base(names[i]) {
			return fmt.Sprintf("its migration %d is %q, not this binary's %q, so it is not a Gatehouse store", i+1, name, path.Base(names[i]))
		}
	}
	return ""
}

// immutableDSN opens a file that nothing writes to, read-only: SQLite takes
// no locks and creates no -wal or -shm file beside it, and runs no function
// a schema names (trusted_schema off).
func immutableDSN(file string) string {
	q := url.Values{}
	q.Set("mode", "ro")
	q.Set("immutable", "1")
	q.Add("_pragma", "query_only(1)")
	q.Add("_pragma", "trusted_schema(0)")
	return "file:" + (&url.URL{Path: file}).EscapedPath() + "?" + q.Encode()
}

// integrityCheck runs PRAGMA integrity_check and returns its complaints,
// none for a sound database.
func integrityCheck(ctx context.Context, db *sql.DB) ([]string, error) {
	rows, err := db.QueryContext(ctx, `PRAGMA integrity_check`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return nil, err
		}
		if line != "ok" {
			problems = append(problems, line)
		}
	}
	return problems, rows.Err()
}

// migrationNames lists fsys's migrations in order, refusing a gap.
func migrationNames(fsys fs.FS) ([]string, error) {
	names, err := fs.Glob(fsys, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	slices.Sort(names)
	for i, name := range names {
		prefix, _, _ := strings.Cut(path.Base(name), "_")
		if n, err := strconv.Atoi(prefix); err != nil || n != i+1 {
			return nil, fmt.Errorf("migration %s is out of sequence: want number %d", name, i+1)
		}
	}
	return names, nil
}

// recordedMigrations returns the names schema_migrations records, in
// version order; versions must run 1, 2, 3, ...
func recordedMigrations(ctx context.Context, db *sql.DB) ([]string, error) {
	rows, err := db.QueryContext(ctx, `SELECT version, name FROM schema_migrations ORDER BY version`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v int
		var name string
		if err := rows.Scan(&v, &name); err != nil {
			return nil, err
		}
		if v != len(out)+1 {
			return nil, &sequenceError{got: v, want: len(out) + 1}
		}
		out = append(out, name)
	}
	return out, rows.Err()
}

// sequenceError: schema_migrations skips a version.
type sequenceError struct{ got, want int }

func (e *sequenceError) Error() string {
	return fmt.Sprintf("version %d where %d should be", e.got, e.want)
}

// schema is a database's shape as SQLite reports it: every object, each
// table's columns and foreign keys, each index's definition. Comparing
// shapes rather than the CREATE statements' text does not depend on how a
// version of SQLite rewrote that text for ALTER TABLE.
type schema struct {
	Objects []string            // "type name on table", sorted
	Columns map[string][]string // table -> its columns (PRAGMA table_xinfo)
	Keys    map[string][]string // table -> its foreign keys
	Indexes map[string]string   // index -> its CREATE INDEX statement ("" for automatic ones)
}

func readSchema(ctx context.Context, db *sql.DB) (schema, error) {
	s := schema{Columns: map[string][]string{}, Keys: map[string][]string{}, Indexes: map[string]string{}}
	rows, err := db.QueryContext(ctx, `SELECT type, name, tbl_name, COALESCE(sql, '') FROM sqlite_master`)
	if err != nil {
		return s, err
	}
	var tables []string
	for rows.Next() {
		var typ, name, table, text string
		if err := rows.Scan(&typ, &name, &table, &text); err != nil {
			rows.Close()
			return s, err
		}
		s.Objects = append(s.Objects, typ+" "+name+" on "+table)
		switch typ {
		case "table":
			tables = append(tables, name)
		case "index":
			s.Indexes[name] = text
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return s, err
	}
	slices.Sort(s.Objects)
	for _, table := range tables {
		// A pragma's argument cannot be a parameter; the name is quoted.
		quoted := `"` + strings.ReplaceAll(table, `"`, `""`) + `"`
		if s.Columns[table], err = pragmaRows(ctx, db, `PRAGMA table_xinfo(`+quoted+`)`); err != nil {
			return s, err
		}
		if s.Keys[table], err = pragmaRows(ctx, db, `PRAGMA foreign_key_list(`+quoted+`)`); err != nil {
			return s, err
		}
	}
	return s, nil
}

// pragmaRows returns each row of a pragma as one string of its columns.
func pragmaRows(ctx context.Context, db *sql.DB, q string) ([]string, error) {
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	out := []string{}
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		parts := make([]string, len(cols))
		for i, v := range vals {
			parts[i] = cols[i] + "=" + strconv.Quote(v.String)
			if !v.Valid {
				parts[i] = cols[i] + "=NULL"
			}
		}
		out = append(out, strings.Join(parts, " "))
	}
	return out, rows.Err()
}

// differs names the first way got is not want, "" when it is.
func (want schema) differs(got schema) string {
	for _, o := range got.Objects {
		if !slices.Contains(want.Objects, o) {
			return "it has " + o + ", which Gatehouse does not make"
		}
	}
	for _, o := range want.Objects {
		if !slices.Contains(got.Objects, o) {
			return "it lacks " + o
		}
	}
	for table, cols := range want.Columns {
		if table == "schema_migrations" {
			// Made by the migration code, not a migration: compared
			// by its columns' names (its records were read already).
			if columnNames(cols) != columnNames(got.Columns[table]) {
				return "table schema_migrations has other columns"
			}
			continue
		}
		if !reflect.DeepEqual(cols, got.Columns[table]) {
			return "table " + table + " has other columns"
		}
		if !reflect.DeepEqual(want.Keys[table], got.Keys[table]) {
			return "table " + table + " has other foreign keys"
		}
	}
	for index, text := range want.Indexes {
		if got.Indexes[index] != text {
			return "index " + index + " is defined otherwise"
		}
	}
	return ""
}

// columnNames is the column names of PRAGMA table_xinfo rows, in order.
func columnNames(rows []string) string {
	var out []string
	for _, r := range rows {
		for _, f := range strings.Fields(r) {
			if v, ok := strings.CutPrefix(f, "name="); ok {
				out = append(out, v)
			}
		}
	}
	return strings.Join(out, ",")
}

// expectedSchema is the shape the first version migrations make: the
// migrations run, by the same code that Open runs, on an empty database in
// memory.
func expectedSchema(ctx context.Context, version int) (schema, error) {
	db, err := sql.Open("sqlite", "file:expected?mode=memory")
	if err != nil {
		return schema{}, err
	}
	defer db.Close()
	db.SetMaxOpenConns(1) // one connection: one in-memory database
	if err := migrate(ctx, db, firstMigrations{FS: migrations, n: version}); err != nil {
		return schema{}, err
	}
	return readSchema(ctx, db)
}

// firstMigrations is fsys with only its first n migrations.
type firstMigrations struct {
	fs.FS
	n int
}

func (m firstMigrations) keep(name string) bool {
	prefix, _, _ := strings.Cut(path.Base(name), "_")
	n, err := strconv.Atoi(prefix)
	return err == nil && n <= m.n
}

func (m firstMigrations) Open(name string) (fs.File, error) {
	if strings.HasSuffix(name, ".sql") && !m.keep(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return m.FS.Open(name)
}

func (m firstMigrations) ReadDir(name string) ([]fs.DirEntry, error) {
	entries, err := fs.ReadDir(m.FS, name)
	return slices.DeleteFunc(entries, func(e fs.DirEntry) bool {
		return strings.HasSuffix(e.Name(), ".sql") && !m.keep(e.Name())
	}), err
}

// Rebuild makes a new database at dst that holds the rows of the backup
// at src, in this binary's schema: nothing of src's schema is taken over.
// src is checked first (Verify). dst, which must not exist, is then made
// by this binary's migrations up to src's schema version; each of its
// tables is filled from src's table of the same name, by the columns this
// binary's schema gives it, with src opened read-only; and the remaining
// migrations run, as Open would run them. So the constraints in force are
// this binary's: a backup whose tables were made again with other ones (a
// key that replaces on conflict, a CHECK) cannot bring them along, and
// rows that break this binary's constraints are refused. The audit
// trail's id sequence is src's.
//
// dst is closed when Rebuild returns: a database on its own, mode 0600,
// with no -wal or journal beside it. On an error it is removed.
func Rebuild(ctx context.Context, src, dst string) (info BackupInfo, err error) {
	if info, err = Verify(ctx, src); err != nil {
		return info, err
	}
	f, err := os.OpenFile(dst, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return info, fmt.Errorf("rebuild: %w", err)
	}
	if err := f.Close(); err != nil {
		os.Remove(dst)
		return info, fmt.Errorf("rebuild: %w", err)
	}
	defer func() {
		if err != nil {
			for _, p := range append([]string{dst}, suffixed(dst, sidecars)...) {
				os.Remove(p)
			}
		}
	}()
	// A rollback journal, not a WAL: closed, the database stands alone.
	q := url.Values{}
	q.Add("_pragma", "trusted_schema(0)")
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+(&url.URL{Path: dst}).EscapedPath()+"?"+q.Encode())
	if err != nil {
		return info, fmt.Errorf("rebuild: %w", err)
	}
	db.SetMaxOpenConns(1) // ATTACH is a connection's
	err = rebuild(ctx, db, src, info.Version)
	if cerr := db.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("rebuild: %w", cerr)
	}
	if err == nil {
		err = syncFile(dst)
	}
	return info, err
}

func rebuild(ctx context.Context, db *sql.DB, src string, version int) error {
	if err := migrate(ctx, db, firstMigrations{FS: migrations, n: version}); err != nil {
		return fmt.Errorf("rebuild: schema version %d: %w", version, err)
	}
	if err := copyRows(ctx, db, src); err != nil {
		return err
	}
	if err := migrate(ctx, db, migrations); err != nil {
		return fmt.Errorf("rebuild: migrating the backup's data: %w", err)
	}
	return nil
}

// copyRows fills db's tables, in one transaction, from those of the
// database src, attached read-only for that.
func copyRows(ctx context.Context, db *sql.DB, src string) error {
	refuse := func(format string, args ...any) error {
		return &NotABackupError{Path: src, Reason: fmt.Sprintf(format, args...)}
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("rebuild: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `ATTACH DATABASE $1 AS backup`, immutableDSN(src)); err != nil {
		return fmt.Errorf("rebuild: open the backup: %w", err)
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), `DETACH DATABASE backup`)

	var tables []string
	rows, err := conn.QueryContext(ctx, `SELECT name FROM main.sqlite_master
		WHERE type = 'table' AND name NOT LIKE 'sqlite\_%' ESCAPE '\' AND name <> 'schema_migrations' ORDER BY name`)
	if err != nil {
		return fmt.Errorf("rebuild: %w", err)
	}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			rows.Close()
			return fmt.Errorf("rebuild: %w", err)
		}
		tables = append(tables, name)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("rebuild: %w", err)
	}

	t, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("rebuild: %w", err)
	}
	defer t.Rollback()
	for _, table := range tables {
		cols, err := columnsOf(ctx, t, table)
		if err != nil {
			return fmt.Errorf("rebuild: table %s: %w", table, err)
		}
		list := strings.Join(cols, ", ")
		// What a migration put in the new table (change_head's row)
		// is the backup's to say.
		if _, err := t.ExecContext(ctx, `DELETE FROM main.`+quoteIdent(table)); err != nil {
			return fmt.Errorf("rebuild: table %s: %w", table, err)
		}
		if _, err := t.ExecContext(ctx, `INSERT INTO main.`+quoteIdent(table)+` (`+list+`) SELECT `+list+` FROM backup.`+quoteIdent(table)); err != nil {
			return refuse("its table %s does not hold to Gatehouse's schema (%v)", table, err)
		}
	}
	// AUTOINCREMENT ids (the audit trail's) never go back: the sequence
	// is at least the backup's, which may be above its greatest id.
	seqs, err := t.QueryContext(ctx, `SELECT name, seq FROM backup.sqlite_sequence`)
	if err != nil {
		return refuse("its id sequences cannot be read (%v)", err)
	}
	type seq struct {
		name string
		n    int64
	}
	var found []seq
	for seqs.Next() {
		var s seq
		if err := seqs.Scan(&s.name, &s.n); err != nil {
			seqs.Close()
			return refuse("its id sequences cannot be read (%v)", err)
		}
		if slices.Contains(tables, s.name) {
			found = append(found, s)
		}
	}
	seqs.Close()
	if err := seqs.Err(); err != nil {
		return refuse("its id sequences cannot be read (%v)", err)
	}
	for _, s := range found {
		if err := raiseSeq(ctx, t, s.name, s.n); err != nil {
			return fmt.Errorf("rebuild: %w", err)
		}
	}
	broken, err := t.QueryContext(ctx, `PRAGMA main.foreign_key_check`)
	if err != nil {
		return fmt.Errorf("rebuild: %w", err)
	}
	var parent string
	if broken.Next() {
		var table string
		var rowid sql.NullInt64
		var fkid int
		if err := broken.Scan(&table, &rowid, &parent, &fkid); err != nil {
			broken.Close()
			return fmt.Errorf("rebuild: %w", err)
		}
		broken.Close()
		return refuse("its table %s refers to rows of %s that are not there", table, parent)
	}
	broken.Close()
	if err := t.Commit(); err != nil {
		return fmt.Errorf("rebuild: %w", err)
	}
	return nil
}

// columnsOf lists, quoted, the columns this binary's schema gives table
// (generated and hidden ones left out: they are not written).
func columnsOf(ctx context.Context, t *sql.Tx, table string) ([]string, error) {
	rows, err := t.QueryContext(ctx, `SELECT name, hidden FROM pragma_table_xinfo($1, 'main') ORDER BY cid`, table)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var cols []string
	for rows.Next() {
		var name string
		var hidden int
		if err := rows.Scan(&name, &hidden); err != nil {
			return nil, err
		}
		if hidden == 0 {
			cols = append(cols, quoteIdent(name))
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(cols) == 0 {
		return nil, fmt.Errorf("no columns")
	}
	return cols, nil
}

func quoteIdent(name string) string {
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}

// sqlExec is what *sql.Tx and *sql.Conn have in common for raiseSeq.
type sqlExec interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// raiseSeq makes the AUTOINCREMENT sequence of table at least n.
func raiseSeq(ctx context.Context, t sqlExec, table string, n int64) error {
	r, err := t.ExecContext(ctx, `UPDATE main.sqlite_sequence SET seq = MAX(seq, $2) WHERE name = $1`, table, n)
	if err != nil {
		return err
	}
	if done, err := r.RowsAffected(); err != nil || done > 0 {
		return err
	}
	_, err = t.ExecContext(ctx, `INSERT INTO main.sqlite_sequence (name, seq) VALUES ($1, $2)`, table, n)
	return err
}

// OpenExisting opens the database at path for a restore to read what it
// replaces. Unlike Open it creates nothing and changes nothing, and it
// refuses what Open would take for a new, empty database or change: a
// path that names nothing, a symbolic link to nothing (an unmounted
// volume), an empty file, a file that is not SQLite or not a Gatehouse
// store, and a store of another schema version than this binary's
// (*SchemaVersionError for an older one). The store is read-only: View
// works, Tx and every write fail. With no write-ahead log beside the file
// (a server that stopped cleanly) it is opened immutable, so that not even
// a -shm file is made; with one, the log's commits are read.
func OpenExisting(ctx context.Context, path string) (*Store, error) {
	li, err := os.Lstat(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) && li.Mode()&fs.ModeSymlink != 0 {
		target, _ := os.Readlink(path)
		return nil, fmt.Errorf("sqlite: %s is a symbolic link to %s, which does not exist (a volume that is not mounted?)", path, target)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("sqlite: %s is not a regular file", path)
	}
	if fi.Size() == 0 {
		return nil, fmt.Errorf("sqlite: %s is empty (0 bytes), which no server's database is (a volume that is not mounted, or a file cut short?)", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	head := make([]byte, 16)
	_, err = io.ReadFull(f, head)
	f.Close()
	if err != nil || !bytes.Equal(head, []byte("SQLite format 3\x00")) {
		return nil, fmt.Errorf("sqlite: %s is not a SQLite database", path)
	}
	d := immutableDSN(path)
	if wi, err := os.Stat(path + "-wal"); err == nil && wi.Size() > 0 {
		d = dsn(path, true)
	}
	ro, err := sql.Open("sqlite", d)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	ro.SetMaxOpenConns(8)
	ro.SetMaxIdleConns(8)
	fail := func(err error) (*Store, error) {
		ro.Close()
		return nil, err
	}
	names, err := migrationNames(migrations)
	if err != nil {
		return fail(err)
	}
	recorded, err := recordedMigrations(ctx, ro)
	if err != nil {
		return fail(fmt.Errorf("sqlite: %s is not a Gatehouse store: its schema_migrations table cannot be read (%v)", path, err))
	}
	if problem := migrationsDiffer(recorded, names); problem != "" {
		return fail(fmt.Errorf("sqlite: %s cannot be read by this binary: %s", path, problem))
	}
	if len(recorded) < len(names) {
		return fail(&SchemaVersionError{Path: path, Version: len(recorded), Latest: len(names)})
	}
	pin, err := ro.Conn(ctx)
	if err != nil {
		return fail(fmt.Errorf("sqlite: %s: %w", path, err))
	}
	s := &Store{db: ro, ro: ro, writer: make(chan struct{}, 1), pin: pin, freeSpace: freeSpace}
	if s.files, err = identify(path); err != nil {
		s.Close()
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	return s, nil
}

// SchemaVersionError is OpenExisting's refusal of a database of an older
// schema version than this binary's, which it would have to migrate to
// read.
type SchemaVersionError struct {
	Path            string
	Version, Latest int
}

func (e *SchemaVersionError) Error() string {
	return fmt.Sprintf("sqlite: %s is at schema version %d and this binary at %d: reading it would mean migrating it", e.Path, e.Version, e.Latest)
}

// ---- what only a restore reads and writes (gatehouse.RestoreTx)

var _ gatehouse.RestoreTx = (*tx)(nil)

func (t *tx) ListLoginAttemptEntries(ctx context.Context) ([]gatehouse.LoginAttemptEntry, error) {
	return list(ctx, t, func(sc scanner) (gatehouse.LoginAttemptEntry, error) {
		var (
			e      gatehouse.LoginAttemptEntry
			at     int64
			failed int
		)
		err := sc.Scan(&e.ID, &e.Key, &at, &failed)
		e.At, e.Failed = fromNanos(at), failed != 0
		return e, err
	}, `SELECT id, key, at, failed FROM login_attempts ORDER BY id, key`)
}

func (t *tx) PutLoginAttemptEntries(ctx context.Context, entries []gatehouse.LoginAttemptEntry) error {
	if len(entries) == 0 {
		return nil
	}
	stmt, err := t.tx.PrepareContext(ctx, `INSERT INTO login_attempts (id, key, at, failed) VALUES ($1, $2, $3, $4)
		ON CONFLICT (id, key) DO UPDATE SET at = excluded.at, failed = excluded.failed`)
	if err != nil {
		return wrap(err)
	}
	defer stmt.Close()
	for _, e := range entries {
		failed := 0
		if e.Failed {
			failed = 1
		}
		if _, err := stmt.ExecContext(ctx, e.ID, e.Key, nanos(e.At), failed); err != nil {
			return wrap(err)
		}
	}
	return nil
}

func (t *tx) EventSeq(ctx context.Context) (int64, error) {
	var n int64
	err := t.tx.QueryRowContext(ctx, `SELECT MAX(
		COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0),
		COALESCE((SELECT MAX(id) FROM events), 0))`).Scan(&n)
	return n, wrap(err)
}

func (t *tx) RaiseEventSeq(ctx context.Context, seq int64) error {
	return wrap(raiseSeq(ctx, t.tx, "events", seq))
}

// viewTx is a View's Tx: readonly's guard over tx, with the reads of a
// restore passed through and its writes refused.
type viewTx struct {
	readonly.Tx
	r *tx
}

var _ gatehouse.RestoreTx = viewTx{}

func (v viewTx) ListLoginAttemptEntries(ctx context.Context) ([]gatehouse.LoginAttemptEntry, error) {
	return v.r.ListLoginAttemptEntries(ctx)
}

func (v viewTx) EventSeq(ctx context.Context) (int64, error) { return v.r.EventSeq(ctx) }

func (viewTx) PutLoginAttemptEntries(context.Context, []gatehouse.LoginAttemptEntry) error {
	return readonly.Refused("PutLoginAttemptEntries")
}

func (viewTx) RaiseEventSeq(context.Context, int64) error { return readonly.Refused("RaiseEventSeq") }

// Replace makes the database file src the database at dst in one rename,
// so that dst names the old database or the new one at every instant. src
// must be a database on its own: closed, with no -wal or journal beside
// it. Neither file may be open in any store.
//
// When dst exists, keep must name where its database stays (a hard link,
// so the old file is kept as it was; a copy where the file system has no
// hard links). -wal, -shm and journal files left beside dst are not the
// new database's: SQLite would replay such a log into it. They are moved
// beside keep (with their suffixes), or, with no keep, refused. keep must
// not exist.
func Replace(src, dst, keep string) error {
	for _, suffix := range sidecars {
		if _, err := os.Lstat(src + suffix); err == nil {
			return fmt.Errorf("replace: %s is beside %s: close its store first", filepath.Base(src+suffix), src)
		}
	}
	if err := syncFile(src); err != nil {
		return fmt.Errorf("replace: %w", err)
	}
	_, err := os.Lstat(dst)
	dstExists := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("replace: %w", err)
	}
	var left []string
	for _, suffix := range sidecars {
		if _, err := os.Lstat(dst + suffix); err == nil {
			left = append(left, suffix)
		}
	}
	if (dstExists || len(left) > 0) && keep == "" {
		return fmt.Errorf("replace: %s exists and no place to keep it was given", dst)
	}
	if keep != "" {
		for _, p := range append([]string{keep}, suffixed(keep, sidecars)...) {
			if _, err := os.Lstat(p); err == nil {
				return fmt.Errorf("replace: %s already exists", p)
			}
		}
	}
	if dstExists {
		if err := linkOrCopy(dst, keep); err != nil {
			return fmt.Errorf("replace: keeping %s: %w", dst, err)
		}
	}
	for _, suffix := range left {
		if err := os.Rename(dst+suffix, keep+suffix); err != nil {
			return fmt.Errorf("replace: %w", err)
		}
	}
	if err := os.Rename(src, dst); err != nil {
		return fmt.Errorf("replace: %w", err)
	}
	return syncDir(filepath.Dir(dst))
}

func suffixed(p string, suffixes []string) []string {
	out := make([]string, len(suffixes))
	for i, s := range suffixes {
		out[i] = p + s
	}
	return out
}

// linkOrCopy makes to a second name of from, or where the file system
// cannot, a copy of it (mode 0600).
func linkOrCopy(from, to string) error {
	err := os.Link(from, to)
	if err == nil || !(errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.ENOTSUP) || errors.Is(err, syscall.EXDEV) || errors.Is(err, syscall.EMLINK)) {
		return err
	}
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		os.Remove(to)
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		os.Remove(to)
		return err
	}
	return out.Close()
}

func syncFile(p string) error {
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
