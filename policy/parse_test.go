package policy

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseCSV(t *testing.T) {
	csv := strings.Join([]string{
		"# Argo CD style policy",
		"",
		"   p, role:dev , applications ,get, shop/*, allow   ",
		"p, role:dev, applications, sync, shop/*",
		"\tp, alice, applications, delete, shop/prod, deny\r",
		`p, "role,admin", "applications", get, "a,b/*"`,
		`p, bob, settings, get, "say ""hi"""`,
		"g, alice, role:dev",
		`g, "org:team,ops" , "role,admin"`,
		"  # indented comment",
	}, "\n")
	want := []Line{
		{Type: "p", Subject: "role:dev", Resource: "applications", Action: "get", Object: "shop/*", Effect: Allow, Num: 3, Raw: "p, role:dev , applications ,get, shop/*, allow"},
		{Type: "p", Subject: "role:dev", Resource: "applications", Action: "sync", Object: "shop/*", Effect: Allow, Num: 4, Raw: "p, role:dev, applications, sync, shop/*"},
		{Type: "p", Subject: "alice", Resource: "applications", Action: "delete", Object: "shop/prod", Effect: Deny, Num: 5, Raw: "p, alice, applications, delete, shop/prod, deny"},
		{Type: "p", Subject: "role,admin", Resource: "applications", Action: "get", Object: "a,b/*", Effect: Allow, Num: 6, Raw: `p, "role,admin", "applications", get, "a,b/*"`},
		{Type: "p", Subject: "bob", Resource: "settings", Action: "get", Object: `say "hi"`, Effect: Allow, Num: 7, Raw: `p, bob, settings, get, "say ""hi"""`},
		{Type: "g", Subject: "alice", Role: "role:dev", Num: 8, Raw: "g, alice, role:dev"},
		{Type: "g", Subject: "org:team,ops", Role: "role,admin", Num: 9, Raw: `g, "org:team,ops" , "role,admin"`},
	}
	got, err := ParseCSV(csv)
	if err != nil {
		t.Fatalf("ParseCSV: %v", err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ParseCSV:\n got %#v\nwant %#v", got, want)
	}
}

func TestParseCSVEmpty(t *testing.T) {
	for _, csv := range []string{"", "\n\n", "# only a comment\n   \n"} {
		got, err := ParseCSV(csv)
		if err != nil || len(got) != 0 {
			t.Errorf("ParseCSV(%q) = %v, %v; want no lines, no error", csv, got, err)
		}
	}
}

func TestParseCSVErrors(t *testing.T) {
	tests := []struct {
		name string
		line string
		want string
	}{
		{"p too few fields", "p, alice, applications, get", "p line needs 5 or 6 fields, got 4"},
		{"p too many fields", "p, alice, applications, get, *, allow, extra", "p line needs 5 or 6 fields, got 7"},
		{"g too few fields", "g, alice", "g line needs 3 fields, got 2"},
		{"g too many fields", "g, alice, role:x, role:y", "g line needs 3 fields, got 4"},
		{"unknown type", "x, alice, role:x", `unknown line type "x": want p or g`},
		{"upper-case type", "P, alice, applications, get, *", `unknown line type "P": want p or g`},
		{"empty type", ", alice, role:x", `unknown line type "": want p or g`},
		{"bad effect", "p, alice, applications, get, *, permit", `bad effect "permit": want allow or deny`},
		{"effect is case-sensitive", "p, alice, applications, get, *, Allow", `bad effect "Allow": want allow or deny`},
		{"empty effect", "p, alice, applications, get, *,", "empty effect (field 6)"},
		{"empty subject", "p, , applications, get, *", "empty subject (field 2)"},
		{"empty resource", "p, alice,  , get, *", "empty resource (field 3)"},
		{"empty action", `p, alice, applications, "", *`, "empty action (field 4)"},
		{"empty object", "p, alice, applications, get, ", "empty object (field 5)"},
		{"empty g member", "g, , role:x", "empty subject (field 2)"},
		{"empty g role", "g, alice,", "empty role (field 3)"},
		{"unclosed quote", `p, "alice, applications, get, *`, "field 2: quote is not closed"},
		{"text after quote", `p, "alice"x, applications, get, *`, "field 2: text after the closing quote"},
		{"bare quote", `p, al"ice, applications, get, *`, "field 2: quote inside an unquoted field (quote the whole field, doubling inner quotes)"},
		{"carriage return", "p, alice, applications, get, team-a/x\rp, alice, applications, get, team-a/web", "field 5: " + controlInField},
		{"tab in a field", "p, alice, applications, get, team-a/\tx", "field 5: " + controlInField},
		{"NUL in a quoted field", "p, alice, applications, get, \"team-a/\x00x\"", "field 5: " + controlInField},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseCSV("# header\n" + tt.line + "\n")
			if got, want := errString(err), "line 2: "+tt.want; got != want {
				t.Errorf("ParseCSV error = %q, want %q", got, want)
			}
			_, err = ParseLine(tt.line)
			if got := errString(err); got != tt.want {
				t.Errorf("ParseLine error = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestParseCSVReportsEveryBadLine(t *testing.T) {
	csv := "p, alice, applications, get\n" +
		"g, alice, role:x\n" +
		"q, a, b\n" +
		"\n" +
		"p, bob, applications, get, *, maybe\n"
	lines, err := ParseCSV(csv)
	if lines != nil {
		t.Errorf("lines = %v, want none when the policy is bad", lines)
	}
	want := "line 1: p line needs 5 or 6 fields, got 4\n" +
		"line 3: unknown line type \"q\": want p or g\n" +
		"line 5: bad effect \"maybe\": want allow or deny"
	if got := errString(err); got != want {
		t.Errorf("error =\n%s\nwant\n%s", got, want)
	}
	var list ErrorList
	if !errors.As(err, &list) || len(list) != 3 {
		t.Fatalf("error %T is not an ErrorList of 3", err)
	}
	for i, n := range []int{1, 3, 5} {
		if list[i].Line != n {
			t.Errorf("list[%d].Line = %d, want %d", i, list[i].Line, n)
		}
	}
	var le *LineError
	if !errors.As(err, &le) || le.Line != 1 || le.Text != "p, alice, applications, get" {
		t.Errorf("errors.As(*LineError) = %+v, want line 1 with its text", le)
	}
}

func TestParseLine(t *testing.T) {
	got, err := ParseLine("  p, proj:shop:ci, applications, sync, shop/*  ")
	want := Line{Type: "p", Subject: "proj:shop:ci", Resource: "applications", Action: "sync", Object: "shop/*", Effect: Allow, Raw: "p, proj:shop:ci, applications, sync, shop/*"}
	if err != nil || got != want {
		t.Errorf("ParseLine = %#v, %v; want %#v", got, err, want)
	}
	for _, s := range []string{"", "   ", "# comment"} {
		if _, err := ParseLine(s); err == nil {
			t.Errorf("ParseLine(%q) succeeded, want an error", s)
		}
	}
	// A project role's policy is one line; a line break inside a quoted
	// field would show, wherever the line is printed (explain, the
	// dashboard), as a line of its own that grants role:admin.
	spoof := "p, proj:a:r, applications, get, \"a/web\ng, mallory, role:admin\""
	if l, err := ParseLine(spoof); err == nil {
		t.Errorf("ParseLine(%q) = %q, want an error", spoof, l.String())
	}
}

func TestLineString(t *testing.T) {
	tests := []struct {
		line Line
		want string
	}{
		{Line{Type: "p", Subject: "role:x", Resource: "applications", Action: "get", Object: "a/*", Effect: Allow}, "p, role:x, applications, get, a/*, allow"},
		{Line{Type: "p", Subject: "role:x", Resource: "applications", Action: "get", Object: "a/*"}, "p, role:x, applications, get, a/*, allow"},
		{Line{Type: "p", Subject: "alice", Resource: "accounts", Action: "update", Object: "bob", Effect: Deny}, "p, alice, accounts, update, bob, deny"},
		{Line{Type: "p", Subject: "role,x", Resource: "applications", Action: "get", Object: `say "hi"`}, `p, "role,x", applications, get, "say ""hi""", allow`},
		{Line{Type: "p", Subject: " padded ", Resource: "r", Action: "a", Object: "o"}, `p, " padded ", r, a, o, allow`},
		{Line{Type: "g", Subject: "alice", Role: "role:x"}, "g, alice, role:x"},
		{Line{Type: "g", Subject: "org:a,b", Role: "role:x"}, `g, "org:a,b", role:x`},
	}
	for _, tt := range tests {
		got := tt.line.String()
		if got != tt.want {
			t.Errorf("String() = %q, want %q", got, tt.want)
		}
		back, err := ParseLine(got)
		if err != nil {
			t.Errorf("ParseLine(%q): %v", got, err)
			continue
		}
		if !sameFields(back, tt.line) {
			t.Errorf("ParseLine(%q) = %#v, want the fields of %#v", got, back, tt.line)
		}
	}
}

// sameFields compares what a line says, ignoring where it came from.
func sameFields(a, b Line) bool {
	if a.Effect == "" && a.Type == "p" {
		a.Effect = Allow
	}
	if b.Effect == "" && b.Type == "p" {
		b.Effect = Allow
	}
	a.Num, a.Raw, b.Num, b.Raw = 0, "", 0, ""
	return a == b
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

func TestParseCSVIgnoresAByteOrderMark(t *testing.T) {
	lines, err := ParseCSV("\ufeffp, alice, applications, get, */*, allow\n")
	if err != nil || len(lines) != 1 || lines[0].Subject != "alice" {
		t.Fatalf("ParseCSV with BOM = %+v, %v", lines, err)
	}
}
