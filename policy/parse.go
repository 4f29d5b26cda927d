package policy

import (
	"encoding/csv"
	"errors"
	"fmt"
	"strings"
)

// Effect is the effect of a p line.
type Effect string

const (
	Allow Effect = "allow"
	Deny  Effect = "deny"
)

// Line is one policy line.
type Line struct {
	Type     string // "p" or "g"
	Subject  string // p: the subject; g: the member (account, group or role)
	Resource string // p only
	Action   string // p only
	Object   string // p only
	Effect   Effect // p only
	Role     string // g only: the role the member joins
	Num      int    // 1-based line number in its source; 0 for built-in and extra lines
}

// String formats the line as Argo CD writes it.
func (l Line) String() string {
	if l.Type == "g" {
		return "g, " + quote(l.Subject) + ", " + quote(l.Role)
	}
	return strings.Join([]string{"p", quote(l.Subject), quote(l.Resource), quote(l.Action), quote(l.Object), string(l.Effect)}, ", ")
}

func quote(f string) string {
	if strings.ContainsAny(f, ",\"") || strings.TrimSpace(f) != f {
		return `"` + strings.ReplaceAll(f, `"`, `""`) + `"`
	}
	return f
}

// LineError is a problem with one line of a policy.
type LineError struct {
	Num int
	Msg string
}

func (e *LineError) Error() string { return fmt.Sprintf("line %d: %s", e.Num, e.Msg) }

// ParseCSV parses a policy in Argo CD's CSV format. Blank lines and lines
// starting with # are skipped. Every malformed line is reported, each as a
// *LineError naming its line number; any error fails the whole policy.
func ParseCSV(text string) ([]Line, error) {
	var (
		lines []Line
		errs  []error
	)
	for i, raw := range strings.Split(text, "\n") {
		raw = strings.TrimSpace(raw)
		if raw == "" || strings.HasPrefix(raw, "#") {
			continue
		}
		l, err := ParseLine(raw)
		if err != nil {
			errs = append(errs, &LineError{Num: i + 1, Msg: err.Error()})
			continue
		}
		l.Num = i + 1
		lines = append(lines, l)
	}
	return lines, errors.Join(errs...)
}

// ParseLine parses one p or g line.
func ParseLine(raw string) (Line, error) {
	r := csv.NewReader(strings.NewReader(strings.TrimSpace(raw)))
	r.FieldsPerRecord = -1
	r.TrimLeadingSpace = true
	fields, err := r.Read()
	if err != nil {
		return Line{}, fmt.Errorf("not valid CSV: %s", csvProblem(err))
	}
	if more, _ := r.Read(); more != nil {
		return Line{}, errors.New("one line holds more than one record")
	}
	for i := range fields {
		fields[i] = strings.TrimSpace(fields[i])
	}
	switch fields[0] {
	case "p":
		if len(fields) != 5 && len(fields) != 6 {
			return Line{}, fmt.Errorf("a p line needs 5 or 6 fields (p, subject, resource, action, object[, effect]), got %d", len(fields))
		}
		l := Line{Type: "p", Subject: fields[1], Resource: fields[2], Action: fields[3], Object: fields[4], Effect: Allow}
		if len(fields) == 6 {
			switch Effect(fields[5]) {
			case Allow, Deny:
				l.Effect = Effect(fields[5])
			default:
				return Line{}, fmt.Errorf("effect must be allow or deny, got %q", fields[5])
			}
		}
		for i, name := range []string{"subject", "resource", "action", "object"} {
			if fields[i+1] == "" {
				return Line{}, fmt.Errorf("empty %s", name)
			}
		}
		return l, nil
	case "g":
		if len(fields) != 3 {
			return Line{}, fmt.Errorf("a g line needs 3 fields (g, subject, role), got %d", len(fields))
		}
		if fields[1] == "" || fields[2] == "" {
			return Line{}, errors.New("empty subject or role")
		}
		return Line{Type: "g", Subject: fields[1], Role: fields[2]}, nil
	case "":
		return Line{}, errors.New("empty line type")
	}
	return Line{}, fmt.Errorf("unknown line type %q (want p or g)", truncate(fields[0], 20))
}

func csvProblem(err error) string {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
