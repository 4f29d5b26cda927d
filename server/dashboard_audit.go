package server

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/service"
)

// The audit page's extras: a token's activity chart, and the export of
// the filtered audit list as CSV or JSON. Both read through the service
// under the audit list's rule (ListEvents, TokenActivity); the pages only
// draw and encode what it answers.

// auditLinks are the links an audit view offers: its exports, and the
// chart of the token it is filtered on.
type auditLinks struct {
	CSV, JSON, Activity string
	Max                 string // the most events an export holds, for people
}

// links keeps the filter in the export links. They export the whole
// view from its newest event, whichever page of it is shown.
func (q auditQuery) links() auditLinks {
	v := q.values()
	l := auditLinks{CSV: "/audit/export.csv", JSON: "/audit/export.json", Max: thousands(maxAuditExport)}
	if enc := v.Encode(); enc != "" {
		l.CSV += "?" + enc
		l.JSON += "?" + enc
	}
	if q.TokenID != "" {
		l.Activity = activityURL(q.TokenID)
	}
	return l
}

// activityURL is the page of a token's activity chart.
func activityURL(tokenID string) string {
	return "/audit/tokens/" + url.PathEscape(tokenID)
}

// tokenActivityView is the token activity page.
type tokenActivityView struct {
	service.TokenActivity
	Chart    activityChart
	Busy     []activityRow // the hours with requests, newest first
	Requests int
	Busiest  activityRow
	From, To string // the window, for people
	AuditURL string // these requests in the audit list
}

// activityRow is one hour of the table under the chart.
type activityRow struct {
	Hour                   time.Time
	Label                  string
	Allowed, Denied, Total int
}

// tokenActivity shows a token's requests per hour over the last 7 days,
// denials highlighted, with the same numbers as a table.
func (d *dashboard) tokenActivity(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	a, err := d.svc.TokenActivity(r.Context(), p, r.PathValue("id"))
	if err != nil {
		return err
	}
	v := tokenActivityView{
		TokenActivity: a,
		Chart:         newActivityChart(a.Hours),
		Requests:      a.Allowed + a.Denied,
		From:          hourLabel(a.Since),
		To:            hourLabel(a.Until),
	}
	for i := len(a.Hours) - 1; i >= 0; i-- {
		h := a.Hours[i]
		if n := h.Allowed + h.Denied; n > 0 {
			row := activityRow{Hour: h.Hour, Label: hourLabel(h.Hour), Allowed: h.Allowed, Denied: h.Denied, Total: n}
			v.Busy = append(v.Busy, row)
			if n > v.Busiest.Total {
				v.Busiest = row
			}
		}
	}
	q := url.Values{"tokenId": {a.TokenID}, "type": {gatehouse.EventRequest}, "since": {a.Since.Format("2006-01-02T15:04")}}
	v.AuditURL = "/audit?" + q.Encode()
	d.render(w, r, p, http.StatusOK, "audit_token", view{Title: "Token activity", Section: "Audit", Data: v})
	return nil
}

// maxAuditExport bounds one export: the newest events of the view, at most
// this many (docs/audit.md). A larger view is exported in parts: the
// JSON export ends with the cursor of the next part, and the last row of
// a CSV export says that it stopped.
const maxAuditExport = 100_000

// exportPage is how many events the export reads from the service at a
// time: the audit list's largest page.
const exportPage = 1000

// auditExporter encodes an export as it is streamed.
type auditExporter interface {
	begin() error
	event(e gatehouse.Event) error
	// end closes the export. next is the cursor of the rest when the
	// export stopped at its maximum; problem says why it stopped early.
	end(next, problem string) error
}

// auditExportCSV and auditExportJSON stream the audit view the query
// describes, with its filters, newest first.
func (d *dashboard) auditExportCSV(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	return d.auditExport(w, r, p, "text/csv; charset=utf-8", "csv", func(w io.Writer) auditExporter { return newCSVExporter(w) })
}

func (d *dashboard) auditExportJSON(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	return d.auditExport(w, r, p, "application/json", "json", func(w io.Writer) auditExporter { return &jsonExporter{w: w} })
}

// auditExport reads the first page before it answers, so that a filter
// the service refuses (a bad value, someone else's events) is an error
// page and not a file. It then streams page after page of the same
// listing, each one asked of the service with its cursor, so that what
// is exported is what the audit list shows, under the same permission.
func (d *dashboard) auditExport(w http.ResponseWriter, r *http.Request, p *service.Principal, ctype, ext string, newExporter func(io.Writer) auditExporter) error {
	q, f, err := parseAuditQuery(r.URL.Query())
	if err != nil {
		return err
	}
	f.Limit = min(exportPage, maxAuditExport)
	list, err := d.svc.ListEvents(r.Context(), p, f, q.Cursor)
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", ctype)
	h.Set("Content-Disposition", `attachment; filename="gatehouse-audit.`+ext+`"`)
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	buf := bufio.NewWriterSize(w, 32<<10)
	page := func(cursor string, limit int) (gatehouse.List[gatehouse.Event], error) {
		f.Limit = limit
		return d.svc.ListEvents(r.Context(), p, f, cursor)
	}
	n, err := streamAudit(newExporter(buf), list, page, maxAuditExport)
	if errors.Is(err, errExportWrite) || r.Context().Err() != nil {
		return nil // the client went away
	}
	if err != nil {
		d.s.log.ErrorContext(r.Context(), "audit export", "request_id", RequestID(r.Context()), "err", err, "events", n)
	}
	_ = buf.Flush() // a failed write means the client went away
	return nil
}

// errExportWrite marks a failed write of an export: the client went away.
var errExportWrite = errors.New("writing the export failed")

// streamAudit encodes first and the pages after it, asking page for each
// with the previous page's cursor and at most the events still allowed,
// until the listing ends or limit events are written; first holds at most
// limit. It returns how many it wrote. An export that stops at limit ends
// with the cursor of the rest; one whose page could not be read ends
// saying so (the answer has begun: only the file can tell).
func streamAudit(x auditExporter, first gatehouse.List[gatehouse.Event], page func(cursor string, limit int) (gatehouse.List[gatehouse.Event], error), limit int) (int, error) {
	if err := x.begin(); err != nil {
		return 0, errors.Join(errExportWrite, err)
	}
	var next, problem string
	var readErr error
	list, n := first, 0
	for {
		if len(list.Items) > limit-n {
			return n, gatehouse.Errorf(gatehouse.EINTERNAL, "audit export: a page of %d events with %d to go", len(list.Items), limit-n)
		}
		for _, e := range list.Items {
			if err := x.event(e); err != nil {
				return n, errors.Join(errExportWrite, err)
			}
			n++
		}
		if list.NextCursor == "" {
			break
		}
		if n >= limit {
			next = list.NextCursor
			break
		}
		list, readErr = page(list.NextCursor, min(exportPage, limit-n))
		if readErr != nil {
			problem = "the export stopped early after " + strconv.Itoa(n) + " events: the audit trail could not be read; export again"
			break
		}
	}
	if err := x.end(next, problem); err != nil {
		return n, errors.Join(errExportWrite, err)
	}
	return n, readErr
}

// thousands writes n with commas between groups of three digits.
func thousands(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// csvColumns are the CSV export's columns: the JSON fields of an event.
var csvColumns = []string{
	"id", "time", "type", "actor", "account", "tokenId", "tokenKind", "method", "path", "route",
	"resource", "action", "object", "decision", "via", "status", "remoteAddr", "userAgent", "detail", "count",
}

// csvExporter writes the CSV export with its own small writer rather than
// encoding/csv, which quotes a field only when it must and so leaves
// cells that a spreadsheet reads apart when it guesses another separator.
// Every field is quoted (a quote inside doubled), fields are separated by
// commas and rows end with a line feed; each cell is neutralised
// (csvCell) before it is quoted.
type csvExporter struct {
	w   io.Writer
	buf []byte
	row []string
}

func newCSVExporter(w io.Writer) *csvExporter {
	return &csvExporter{w: w, row: make([]string, len(csvColumns))}
}

func (x *csvExporter) begin() error { return x.write(csvColumns) }

// write writes one row, every field quoted.
func (x *csvExporter) write(fields []string) error {
	b := x.buf[:0]
	for i, f := range fields {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		for j := 0; j < len(f); j++ {
			if f[j] == '"' {
				b = append(b, '"')
			}
			b = append(b, f[j])
		}
		b = append(b, '"')
	}
	b = append(b, '\n')
	x.buf = b
	_, err := x.w.Write(b)
	return err
}

func (x *csvExporter) event(e gatehouse.Event) error {
	status, count := "", ""
	if e.Status != 0 {
		status = strconv.Itoa(e.Status)
	}
	if e.Type == gatehouse.EventRequest {
		count = strconv.Itoa(e.Requests()) // the requests it stands for
	}
	for i, v := range []string{
		strconv.FormatInt(e.ID, 10), e.Time.UTC().Format(time.RFC3339Nano), e.Type, e.Actor, e.Account,
		e.TokenID, string(e.TokenKind), e.Method, e.Path, e.Route, e.Resource, e.Action, e.Object,
		e.Decision, e.Via, status, e.RemoteAddr, e.UserAgent, e.Detail, count,
	} {
		x.row[i] = csvCell(v)
	}
	return x.write(x.row)
}

// end writes, after an export that stopped, one more row that says so in
// its first cell (and keeps the column count).
func (x *csvExporter) end(next, problem string) error {
	note := problem
	if next != "" {
		note = "more events match: this export stopped at its maximum of " + strconv.Itoa(maxAuditExport) +
			" events; narrow the filter (an earlier “to”) or use the JSON export, which gives the cursor of the rest"
	}
	if note == "" {
		return nil
	}
	clear(x.row)
	x.row[0] = "# " + note
	return x.write(x.row)
}

// csvCell neutralises a cell that a spreadsheet could take for a formula.
// Request paths, user agents, account names and details all come from
// clients, unauthenticated ones included (a failed login's username).
//
// A formula starts with = + - or @, or their full-width forms ＝ ＋ － ＠,
// which some spreadsheets fold to them; a tab or carriage return counts
// as such a start too, since some readers skip it before looking. What
// comes before it does not help: spaces (Unicode ones included, which
// some readers trim), format characters such as a zero-width space or a
// byte-order mark, double quotes. And a cell is not always read as one: a
// spreadsheet that guesses ';' or tab as the separator splits it there,
// and the part after the separator (or after a line feed, for a reader
// that ignores the quoting) is a cell of its own.
//
// So a formula start is looked for at the beginning of the cell and after
// every ';', tab, carriage return and line feed in it, and each place
// that has one gets an apostrophe, which makes a spreadsheet show it as
// text: before the cell, or right after the separator (before any
// spaces). Everything else is kept as recorded.
func csvCell(s string) string {
	if !formulaAt(s) && !strings.ContainsAny(s, ";\t\r\n") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 2)
	if formulaAt(s) {
		b.WriteByte('\'')
	}
	for i := 0; i < len(s); i++ {
		b.WriteByte(s[i])
		// A run of separators ("\r\n") is neutralised after its last.
		if isCSVBreak(s[i]) && (i+1 == len(s) || !isCSVBreak(s[i+1])) && formulaAt(s[i+1:]) {
			b.WriteByte('\'')
		}
	}
	return b.String()
}

// isCSVBreak reports whether c is where a reader may start a new cell
// inside a quoted one: ';', tab, carriage return, line feed.
func isCSVBreak(c byte) bool { return c == ';' || c == '\t' || c == '\r' || c == '\n' }

// formulaAt reports whether s, read from its start, begins a formula: its
// first rune that is not a space, a format character or a double quote
// (which a reader splitting where the quoting did not expect may take for
// an opening one) is one of = + - @ ＝ ＋ － ＠, or is a tab or carriage
// return.
func formulaAt(s string) bool {
	for _, r := range s {
		switch r {
		case '=', '+', '-', '@', '＝', '＋', '－', '＠', '\t', '\r':
			return true
		}
		if !unicode.IsSpace(r) && !unicode.Is(unicode.Cf, r) && r != '"' {
			return false
		}
	}
	return false
}

// jsonExporter writes the audit list's own shape, {"items": [...]}, with
// "nextCursor" when more events match than one export holds and "error"
// when it stopped early.
type jsonExporter struct {
	w io.Writer
	n int
}

func (x *jsonExporter) begin() error {
	_, err := io.WriteString(x.w, `{"items":[`)
	return err
}

func (x *jsonExporter) event(e gatehouse.Event) error {
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	if x.n > 0 {
		if _, err := io.WriteString(x.w, ",\n"); err != nil {
			return err
		}
	} else if _, err := io.WriteString(x.w, "\n"); err != nil {
		return err
	}
	x.n++
	_, err = x.w.Write(b)
	return err
}

func (x *jsonExporter) end(next, problem string) error {
	tail := struct {
		NextCursor string `json:"nextCursor,omitempty"`
		Error      string `json:"error,omitempty"`
	}{next, problem}
	b, err := json.Marshal(tail)
	if err != nil {
		return err
	}
	out := "\n]"
	if len(b) > 2 { // more than {}
		out += "," + string(b[1:len(b)-1])
	}
	_, err = io.WriteString(x.w, out+"}\n")
	return err
}
