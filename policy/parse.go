package policy

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
)

// Effect is what a matching p line does to a request.
type Effect string

const (
	Allow Effect = "allow"
	Deny  Effect = "deny"
)

// Line is one policy line, p or g.
type Line struct {
	Type     string // "p" or "g"
	Subject  string // p: the subject; g: the member (account, group or role)
	Resource string // p only
	Action   string // p only
	Object   string // p only
	Effect   Effect // p only; "" reads as allow
	Role     string // g only: the role the member joins
	Num      int    // 1-based line number in its source; 0 for built-in and extra lines
	Raw      string // the line as written (trimmed), for explain output
}

// String formats the line as Argo CD writes it, effect included:
// "p, role:x, applications, get, a/*, allow" or "g, alice, role:x". Fields
// that need it are quoted, so ParseLine(l.String()) gives l back.
func (l Line) String() string {
	if l.Type == "g" {
		return "g, " + quoteField(l.Subject) + ", " + quoteField(l.Role)
	}
	eft := l.Effect
	if eft == "" {
		eft = Allow
	}
	return l.Type + ", " + quoteField(l.Subject) + ", " + quoteField(l.Resource) + ", " +
		quoteField(l.Action) + ", " + quoteField(l.Object) + ", " + quoteField(string(eft))
}

// text is the line as its author wrote it, or its canonical form.
func (l Line) text() string {
	if l.Raw != "" {
		return l.Raw
	}
	return l.String()
}

// where names the line for error and warning messages.
func (l Line) where() string {
	if l.Num > 0 {
		return fmt.Sprintf("line %d", l.Num)
	}
	return fmt.Sprintf("line %q", l.text())
}

// quoteField quotes f when reading it back would otherwise change it: a
// comma or quote inside, or space at either end (fields are trimmed).
func quoteField(f string) string {
	if strings.ContainsAny(f, `,"`) || strings.TrimSpace(f) != f {
		return `"` + strings.ReplaceAll(f, `"`, `""`) + `"`
	}
	return f
}

// LineError is what is wrong with one policy line.
type LineError struct {
	Line  int    // 1-based line number in Config.CSV; 0 for a line of Config.Extra
	Extra int    // with Line 0: the line's index in Config.Extra
	Text  string // the line, trimmed
	Msg   string // what is wrong
}

// Error reads "line 3: p line needs 5 or 6 fields, got 4". A line without a
// number (from Config.Extra) is named by its text instead.
func (e *LineError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("line %d: %s", e.Line, e.Msg)
	}
	return fmt.Sprintf("line %q: %s", e.Text, e.Msg)
}

// ErrorList is every bad line of a policy, in line order. Its Error is one
// line per bad line.
type ErrorList []*LineError

func (l ErrorList) Error() string {
	msgs := make([]string, len(l))
	for i, e := range l {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

// Unwrap lets errors.As find each *LineError.
func (l ErrorList) Unwrap() []error {
	errs := make([]error, len(l))
	for i, e := range l {
		errs[i] = e
	}
	return errs
}

// ParseCSV parses a policy in Argo CD's policy.csv format. Lines are trimmed;
// blank lines and lines starting with # are skipped. A p line without an
// effect allows. Any malformed line fails the whole policy: the error is an
// ErrorList that names every bad line ("line 3: ...").
func ParseCSV(csv string) ([]Line, error) {
	lines, errs := parseCSV(csv)
	if len(errs) > 0 {
		return nil, errs
	}
	return lines, nil
}

func parseCSV(csv string) ([]Line, ErrorList) {
	// Some editors start files with a UTF-8 byte-order mark.
	csv = strings.TrimPrefix(csv, "\ufeff")
	src := strings.Split(csv, "\n")
	lines := make([]Line, 0, len(src))
	var errs ErrorList
	for i, raw := range src {
		raw = strings.TrimSpace(raw)
		if raw == "" || raw[0] == '#' {
			continue
		}
		l, err := parseLine(raw)
		if err != nil {
			errs = append(errs, &LineError{Line: i + 1, Text: raw, Msg: err.Error()})
			continue
		}
		l.Num = i + 1
		lines = append(lines, l)
	}
	return lines, errs
}

// ParseLine parses one p or g line (a project role's policy, say). Its
// errors say what is wrong without a line number; blank and comment lines
// are errors here.
func ParseLine(s string) (Line, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return Line{}, errors.New("empty line")
	case s[0] == '#':
		return Line{}, errors.New("a comment, not a policy line")
	}
	return parseLine(s)
}

// fieldNames names the fields of p and g lines in error messages.
var (
	pFields = [...]string{"type", "subject", "resource", "action", "object", "effect"}
	gFields = [...]string{"type", "subject", "role"}
)

// parseLine parses a trimmed, non-blank, non-comment line.
func parseLine(s string) (Line, error) {
	f, err := splitFields(s)
	if err != nil {
		return Line{}, err
	}
	switch f[0] {
	case "p":
		if len(f) != 5 && len(f) != 6 {
			return Line{}, fmt.Errorf("p line needs 5 or 6 fields, got %d", len(f))
		}
		for i := 1; i < len(f); i++ {
			if f[i] == "" {
				return Line{}, fmt.Errorf("empty %s (field %d)", pFields[i], i+1)
			}
		}
		l := Line{Type: "p", Subject: f[1], Resource: f[2], Action: f[3], Object: f[4], Effect: Allow, Raw: s}
		if len(f) == 6 {
			switch Effect(f[5]) {
			case Allow, Deny:
				l.Effect = Effect(f[5])
			default:
				return Line{}, fmt.Errorf("bad effect %q: want allow or deny", clip(f[5]))
			}
		}
		return l, nil
	case "g":
		if len(f) != 3 {
			return Line{}, fmt.Errorf("g line needs 3 fields, got %d", len(f))
		}
		for i := 1; i < len(f); i++ {
			if f[i] == "" {
				return Line{}, fmt.Errorf("empty %s (field %d)", gFields[i], i+1)
			}
		}
		return Line{Type: "g", Subject: f[1], Role: f[2], Raw: s}, nil
	}
	return Line{}, fmt.Errorf("unknown line type %q: want p or g", clip(f[0]))
}

// controlInField refuses a field with a control character: a line break
// in a quoted field would print as a line of its own wherever the line is
// shown ("p, proj:a:r, applications, get, "a/x<LF>g, mallory, role:admin""
// reads as a g line granting role:admin), and a carriage return would
// overwrite the line on a terminal.
const controlInField = "a control character (line break, carriage return, tab) in a field"

// splitFields splits a line at commas, CSV style: fields are trimmed, and a
// field in double quotes may hold commas and "" for a quote. Unlike
// encoding/csv it allows space around a quoted field.
func splitFields(s string) ([]string, error) {
	var fields []string
	for i := 0; ; {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
			i++
		}
		n := len(fields) + 1
		if i < len(s) && s[i] == '"' {
			var b strings.Builder
			closed := false
			for i++; i < len(s); i++ {
				if s[i] == '"' {
					if i+1 < len(s) && s[i+1] == '"' {
						b.WriteByte('"')
						i++
						continue
					}
					closed = true
					i++
					break
				}
				b.WriteByte(s[i])
			}
			if !closed {
				return nil, fmt.Errorf("field %d: quote is not closed", n)
			}
			for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
				i++
			}
			if i < len(s) && s[i] != ',' {
				return nil, fmt.Errorf("field %d: text after the closing quote", n)
			}
			if strings.ContainsFunc(b.String(), unicode.IsControl) {
				return nil, fmt.Errorf("field %d: %s", n, controlInField)
			}
			fields = append(fields, b.String())
		} else {
			end := strings.IndexByte(s[i:], ',')
			if end < 0 {
				end = len(s)
			} else {
				end += i
			}
			f := strings.TrimSpace(s[i:end])
			if strings.Contains(f, `"`) {
				return nil, fmt.Errorf("field %d: quote inside an unquoted field (quote the whole field, doubling inner quotes)", n)
			}
			if strings.ContainsFunc(f, unicode.IsControl) {
				return nil, fmt.Errorf("field %d: %s", n, controlInField)
			}
			fields = append(fields, f)
			i = end
		}
		if i >= len(s) {
			return fields, nil
		}
		i++ // the comma
	}
}

// clip keeps user text in messages short.
func clip(s string) string {
	const max = 40
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
}
