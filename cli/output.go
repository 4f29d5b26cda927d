package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"
)

// Output formats of read commands.
const (
	formatTable = "table"
	formatJSON  = "json"
	formatYAML  = "yaml"
	// formatWide is the table with more columns, for list commands that
	// have them (addListOutputFlag).
	formatWide = "wide"
)

// addOutputFlag gives a read command -o table|json|yaml.
func addOutputFlag(cmd *cobra.Command) *string {
	format := new(string)
	cmd.Flags().StringVarP(format, "output", "o", formatTable, "output format: table, json or yaml")
	return format
}

// listFormat is the -o of a list command with a wide table.
type listFormat struct{ value string }

// addListOutputFlag gives a list command -o table|wide|json|yaml.
func addListOutputFlag(cmd *cobra.Command) *listFormat {
	f := &listFormat{}
	cmd.Flags().StringVarP(&f.value, "output", "o", formatTable, "output format: table, wide (more columns), json or yaml")
	return f
}

// check rejects an unknown -o before any request is sent.
func (f *listFormat) check() error {
	if f.value == formatWide {
		return nil
	}
	if err := checkFormat(f.value); err != nil {
		return fmt.Errorf("unknown output format %q: want table, wide, json or yaml", f.value)
	}
	return nil
}

// wide reports whether the wide table was asked for.
func (f *listFormat) wide() bool { return f.value == formatWide }

// render is render for the list: the wide table is a table.
func (f *listFormat) render(w io.Writer, v any, table func(*tabwriter.Writer)) error {
	format := f.value
	if format == formatWide {
		format = formatTable
	}
	return render(w, format, v, table)
}

// render writes v in format: JSON as the API sends it, YAML with the same
// field names, or the table that table draws.
func render(w io.Writer, format string, v any, table func(*tabwriter.Writer)) error {
	switch format {
	case formatJSON:
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	case formatYAML:
		b, err := toYAML(v)
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	case formatTable, "":
		tw := newTable(w)
		table(tw)
		return tw.Flush()
	}
	return fmt.Errorf("unknown output format %q: want table, json or yaml", format)
}

// checkFormat rejects an unknown -o before any request is sent.
func checkFormat(format string) error {
	switch format {
	case formatTable, formatJSON, formatYAML, "":
		return nil
	}
	return fmt.Errorf("unknown output format %q: want table, json or yaml", format)
}

// toYAML renders v with its JSON field names and order: it encodes JSON,
// which is YAML, and re-emits the node tree in block style.
func toYAML(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var n yaml.Node
	if err := yaml.Unmarshal(b, &n); err != nil {
		return nil, err
	}
	blockStyle(&n)
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&n); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func blockStyle(n *yaml.Node) {
	if n.Kind == yaml.MappingNode || n.Kind == yaml.SequenceNode {
		n.Style = 0
	}
	// JSON strings come back double-quoted; plain style lets the encoder
	// quote only what needs it.
	if n.Kind == yaml.ScalarNode && n.Style == yaml.DoubleQuotedStyle {
		n.Style = 0
	}
	for _, c := range n.Content {
		blockStyle(c)
	}
}

func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
}

// row writes one tab-separated table row. Cells are shown terminal-safe:
// what the server says (a user agent in the audit trail, an account's
// name) may hold escape sequences meant for the reader's terminal.
func row(w io.Writer, cells ...string) {
	safe := make([]string, len(cells))
	for i, c := range cells {
		safe[i] = termSafe(c)
	}
	fmt.Fprintln(w, strings.Join(safe, "\t"))
}

// termSafe replaces what a terminal would act on instead of showing —
// control characters (C0, DEL, C1, which begin escape sequences) and the
// bidirectional overrides, which reorder what is shown — with U+FFFD.
func termSafe(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r < 0x20, r >= 0x7f && r < 0xa0, r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
			return utf8.RuneError
		}
		return r
	}, s)
}

// fmtTime is RFC 3339 in UTC, or alt for the zero time.
func fmtTime(t time.Time, alt string) string {
	if t.IsZero() {
		return alt
	}
	return t.UTC().Format(time.RFC3339)
}

// fmtExpiry shows an expiry: "never", the time, or the time marked
// "(expired)" when it has passed at now.
func fmtExpiry(t time.Time, now time.Time) string {
	switch {
	case t.IsZero():
		return "never"
	case !now.Before(t):
		return fmtTime(t, "") + " (expired)"
	}
	return fmtTime(t, "")
}

// orDash shows an empty cell as "-" so columns stay readable.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// join lists values with commas, or "-" for none.
func join[T ~string](vs []T) string {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = string(v)
	}
	return orDash(strings.Join(s, ","))
}

// nonNil makes JSON print [] rather than null for an empty list.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// tokens counts tokens in words: "1 token", "2 tokens".
func tokens(n int) string {
	if n == 1 {
		return "1 token"
	}
	return fmt.Sprintf("%d tokens", n)
}
