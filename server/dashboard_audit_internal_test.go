package server

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
)

func TestDashboardAuditCSVCellNeutralisesFormulas(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`=HYPERLINK("http://evil.example","x")`, `'=HYPERLINK("http://evil.example","x")`},
		{"+1+1", "'+1+1"},
		{"-2+3", "'-2+3"},
		{"@SUM(A1)", "'@SUM(A1)"},
		// A tab or carriage return starts a formula, and what follows
		// it is a cell of its own to a reader that splits there.
		{"\t=1", "'\t'=1"},
		{"\r=1", "'\r'=1"},
		{"\tx", "'\tx"},
		// Spaces and format characters before the formula do not help.
		{"  =1", "'  =1"},
		{"\u00a0=1", "'\u00a0=1"},
		{"\u3000-1", "'\u3000-1"},
		{"\u200b\ufeff@A1", "'\u200b\ufeff@A1"},
		{"\"=1", "'\"=1"},
		// Full-width forms.
		{"＝1+1", "'＝1+1"},
		{"＋1", "'＋1"},
		{"－1", "'－1"},
		{"＠A1", "'＠A1"},
		// After ';', a tab or a line break, whatever spaces follow; a
		// run of breaks is neutralised after its last.
		{"x;=1", "x;'=1"},
		{"x; \u00a0=1", "x;' \u00a0=1"},
		{"x\t=1", "x\t'=1"},
		{"x\r\n=1", "x\r\n'=1"},
		{"=1;+2", "'=1;'+2"},
		{"x;;", "x;;"},
		{"x; y", "x; y"},
		{"x,=1", "x,=1"}, // every field is quoted: a comma splits nothing
		{"/api/v1/account", "/api/v1/account"},
		{"alice", "alice"},
		{"a=b", "a=b"},
		{"", ""},
	} {
		if got := csvCell(tc.in); got != tc.want {
			t.Errorf("csvCell(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// pagedEvents is a listing of n events, newest (highest id) first, served
// in pages with cursors as the service serves them; fail makes the page
// after the given cursor fail.
type pagedEvents struct {
	n     int
	fail  string
	asked []int // the limits asked for
}

func (p *pagedEvents) page(cursor string, limit int) (gatehouse.List[gatehouse.Event], error) {
	p.asked = append(p.asked, limit)
	if p.fail != "" && cursor == p.fail {
		return gatehouse.List[gatehouse.Event]{}, errors.New("store down")
	}
	top := p.n
	if cursor != "" {
		fmt.Sscanf(cursor, "c%d", &top)
	}
	var out gatehouse.List[gatehouse.Event]
	for id := top; id > 0 && len(out.Items) < limit; id-- {
		out.Items = append(out.Items, gatehouse.Event{ID: int64(id), Time: time.Unix(int64(id), 0).UTC(), Type: gatehouse.EventRequest, Actor: "alice", UserAgent: "=cmd"})
	}
	if last := out.Items[len(out.Items)-1].ID; last > 1 {
		out.NextCursor = fmt.Sprintf("c%d", last-1)
	}
	return out, nil
}

func TestDashboardAuditExportStopsAtTheLimit(t *testing.T) {
	for _, tc := range []struct {
		name                string
		events, limit, page int
		fail                string
		wantRows            int
		wantNext, wantError string
	}{
		{"ok/everything", 7, 10, 3, "", 7, "", ""},
		{"ok/exactly the limit", 6, 6, 3, "", 6, "", ""},
		{"ok/more than the limit", 10, 6, 3, "", 6, "c4", ""},
		{"fail/a page fails", 10, 20, 3, "c7", 3, "", "the export stopped early after 3 events"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, format := range []string{"csv", "json"} {
				src := &pagedEvents{n: tc.events, fail: tc.fail}
				first, _ := src.page("", min(tc.page, tc.limit))
				page := func(cursor string, limit int) (gatehouse.List[gatehouse.Event], error) {
					return src.page(cursor, min(limit, tc.page))
				}
				var buf bytes.Buffer
				var x auditExporter = &jsonExporter{w: &buf}
				if format == "csv" {
					x = newCSVExporter(&buf)
				}
				n, err := streamAudit(x, first, page, tc.limit)
				if n != tc.wantRows || (err != nil) != (tc.fail != "") {
					t.Fatalf("%s: %d events, %v; want %d, failing %v", format, n, err, tc.wantRows, tc.fail != "")
				}
				for _, l := range src.asked {
					if l > tc.limit {
						t.Errorf("%s: asked for %d events with a limit of %d", format, l, tc.limit)
					}
				}
				if format == "json" {
					var got struct {
						Items      []gatehouse.Event
						NextCursor string
						Error      string
					}
					if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
						t.Fatalf("json: %v\n%s", err, buf.Bytes())
					}
					if len(got.Items) != tc.wantRows || got.NextCursor != tc.wantNext || !strings.HasPrefix(got.Error, tc.wantError) || (tc.wantError == "") != (got.Error == "") {
						t.Errorf("json: %d items, next %q, error %q; want %d, %q, %q", len(got.Items), got.NextCursor, got.Error, tc.wantRows, tc.wantNext, tc.wantError)
					}
					for i, e := range got.Items {
						if e.ID != int64(tc.events-i) || e.UserAgent != "=cmd" {
							t.Errorf("json: item %d is %+v", i, e)
						}
					}
					continue
				}
				rows, err := csv.NewReader(&buf).ReadAll()
				if err != nil {
					t.Fatalf("csv: %v", err)
				}
				marker := tc.wantNext != "" || tc.wantError != ""
				want := 1 + tc.wantRows
				if marker {
					want++
				}
				if len(rows) != want || strings.Join(rows[0], ",") != strings.Join(csvColumns, ",") {
					t.Fatalf("csv: %d rows (header %v), want %d", len(rows), rows[0], want)
				}
				for _, row := range rows[1 : 1+tc.wantRows] {
					if row[17] != "'=cmd" {
						t.Errorf("csv: user agent cell %q, want it neutralised", row[17])
					}
				}
				if marker {
					last := rows[len(rows)-1]
					note := tc.wantError
					if tc.wantNext != "" {
						note = "more events match"
					}
					if !strings.HasPrefix(last[0], "# "+note) || strings.Join(last[1:], "") != "" {
						t.Errorf("csv: last row %q, want a note %q in the first cell only", last, note)
					}
				}
			}
		})
	}
}

func TestDashboardAuditChartScale(t *testing.T) {
	for _, tc := range []struct{ busiest, step int }{
		{0, 1}, {1, 1}, {4, 1}, {5, 2}, {9, 3}, {20, 5}, {21, 10}, {40, 10}, {41, 20}, {100, 25}, {101, 50}, {1000, 250}, {1001, 500}, {123456, 50000},
	} {
		if got := niceStep(tc.busiest); got != tc.step {
			t.Errorf("niceStep(%d) = %d, want %d", tc.busiest, got, tc.step)
		}
	}
	// The busiest hour reaches at most the top; a lone denial beside many
	// allowed requests stays visible.
	hours := make([]gatehouse.HourCount, 168)
	hours[10] = gatehouse.HourCount{Allowed: 999, Denied: 1}
	hours[0].Hour = time.Date(2026, 11, 19, 0, 0, 0, 0, time.UTC)
	c := newActivityChart(hours)
	if len(c.Bars) != 1 || c.Ticks[4].Label != "1000" || c.Bars[0].AllowedY != "10.18" || c.Bars[0].DeniedHeight != "1.5" {
		t.Errorf("chart of 999 allowed and 1 denied: bars %+v, top tick %+v", c.Bars, c.Ticks[4])
	}
}
