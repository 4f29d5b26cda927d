package config

import (
	"fmt"
	"math"
	"time"

	"go.yaml.in/yaml/v3"
)

// Day is 24 hours, the unit of the "d" suffix. Calendar days (DST, leap
// seconds) do not apply to token lifetimes and retention periods.
const Day = 24 * time.Hour

// Duration is a time.Duration that reads and writes Go's duration syntax plus
// a day suffix, in YAML, flags (it is a pflag.Value) and text.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String formats whole days as "<n>d" (so "720h" prints as "30d") and
// anything else as time.Duration does. The result always parses back with
// ParseDuration to the same value.
func (d Duration) String() string {
	td := time.Duration(d)
	if td != 0 && td%Day == 0 {
		return fmt.Sprintf("%dd", td/Day)
	}
	return td.String()
}

// Set parses s with ParseDuration; it makes *Duration a pflag.Value.
func (d *Duration) Set(s string) error {
	v, err := ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// Type names the flag's value kind in --help.
func (*Duration) Type() string { return "duration" }

// MarshalText gives String.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText parses with ParseDuration.
func (d *Duration) UnmarshalText(b []byte) error { return d.Set(string(b)) }

// MarshalYAML writes String, so a written config reads back the same.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// UnmarshalYAML accepts a scalar in ParseDuration's syntax. A bare number is
// refused (it has no unit), so "reaperInterval: 60" cannot silently mean 60ns.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return &yaml.TypeError{Errors: []string{
			fmt.Sprintf("line %d: want a duration such as 90s, 12h or 7d", n.Line),
		}}
	}
	v, err := ParseDuration(n.Value)
	if err != nil {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %v", n.Line, err)}}
	}
	*d = Duration(v)
	return nil
}

// ParseDuration parses a duration in Go's syntax (time.ParseDuration: "300ms",
// "1.5h", "2h45m") extended with a "d" unit of 24 hours ("7d", "1d12h",
// "0.5d"). Units may appear in any order and a leading sign applies to the
// whole value, as in Go. Values beyond ±292 years are refused.
func ParseDuration(s string) (time.Duration, error) {
	orig := s
	fail := func(reason string) (time.Duration, error) {
		return 0, fmt.Errorf("invalid duration %q: %s", orig, reason)
	}
	neg := false
	if s != "" && (s[0] == '-' || s[0] == '+') {
		neg = s[0] == '-'
		s = s[1:]
	}
	if s == "0" {
		return 0, nil
	}
	if s == "" {
		return fail("empty")
	}
	var total time.Duration
	for s != "" {
		i := 0
		for i < len(s) && (s[i] == '.' || '0' <= s[i] && s[i] <= '9') {
			i++
		}
		if i == 0 {
			return fail("expected a number")
		}
		j := i
		for j < len(s) && s[j] != '.' && (s[j] < '0' || s[j] > '9') {
			j++
		}
		num, unit := s[:i], s[i:j]
		s = s[j:]
		if unit == "" {
			return fail("missing unit (use ns, us, ms, s, m, h or d)")
		}
		if !knownUnit(unit) {
			return fail(fmt.Sprintf("unknown unit %q (use ns, us, ms, s, m, h or d)", unit))
		}
		if !validNumber(num) {
			return fail(fmt.Sprintf("bad number %q", num))
		}
		// time.ParseDuration does the arithmetic (fractions included); with
		// a well-formed number its only possible failure is overflow.
		var part time.Duration
		if unit == "d" {
			h, err := time.ParseDuration(num + "h")
			if err != nil || h > math.MaxInt64/24 {
				return fail("out of range")
			}
			part = h * 24
		} else {
			var err error
			if part, err = time.ParseDuration(num + unit); err != nil {
				return fail("out of range")
			}
		}
		if total > math.MaxInt64-part {
			return fail("out of range")
		}
		total += part
	}
	if neg {
		total = -total
	}
	return total, nil
}

func knownUnit(u string) bool {
	switch u {
	case "ns", "us", "µs", "μs", "ms", "s", "m", "h", "d":
		return true
	}
	return false
}

// validNumber reports whether num is digits with at most one '.' and at least
// one digit: exactly the numbers time.ParseDuration accepts.
func validNumber(num string) bool {
	dots, digits := 0, 0
	for i := 0; i < len(num); i++ {
		if num[i] == '.' {
			dots++
		} else {
			digits++
		}
	}
	return dots <= 1 && digits > 0
}
