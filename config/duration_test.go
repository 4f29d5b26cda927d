package config_test

import (
	"math"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/gatehouse/gatehouse/config"
)

func TestParseDuration(t *testing.T) {
	const day = 24 * time.Hour
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"0", 0},
		{"-0", 0},
		{"0s", 0},
		{"0d", 0},
		{"90s", 90 * time.Second},
		{"300ms", 300 * time.Millisecond},
		{"1µs", time.Microsecond},
		{"1us", time.Microsecond},
		{"12h", 12 * time.Hour},
		{"1h30m", 90 * time.Minute},
		{"7d", 7 * day},
		{"1d12h", 36 * time.Hour},
		{"12h1d", 36 * time.Hour},
		{"1d1d", 2 * day},
		{"0.5d", 12 * time.Hour},
		{"1.5d", 36 * time.Hour},
		{".25d", 6 * time.Hour},
		{"0.1d", 2*time.Hour + 24*time.Minute},
		{"90d", 2160 * time.Hour},
		{"+2d", 2 * day},
		{"-1d", -day},
		{"-1d12h", -36 * time.Hour},
		{"106751d", 106751 * day},
	}
	for _, tt := range tests {
		got, err := config.ParseDuration(tt.in)
		if err != nil {
			t.Errorf("ParseDuration(%q) error: %v", tt.in, err)
			continue
		}
		if got != tt.want {
			t.Errorf("ParseDuration(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestParseDurationErrors(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"", "empty"},
		{"-", "empty"},
		{"d", "expected a number"},
		{"7", "missing unit"},
		{"1h30", "missing unit"},
		{"7x", `unknown unit "x"`},
		{"7D", `unknown unit "D"`},
		{"7days", `unknown unit "days"`},
		{"1.2.3h", `bad number "1.2.3"`},
		{".d", `bad number "."`},
		{"1d-2h", `unknown unit "d-"`},
		{"--1d", "expected a number"},
		{" 1d", "expected a number"},
		{"1d ", `unknown unit "d "`},
		{"106752d", "out of range"},
		{"9999999999999999999h", "out of range"},
		{"106751d23h59m59s", "out of range"},
	}
	for _, tt := range tests {
		got, err := config.ParseDuration(tt.in)
		if err == nil {
			t.Errorf("ParseDuration(%q) = %v, want an error", tt.in, got)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "invalid duration") {
			t.Errorf("ParseDuration(%q) error = %q, want it to say %q", tt.in, err, tt.want)
		}
	}
}

func TestDurationString(t *testing.T) {
	tests := []struct {
		in   time.Duration
		want string
	}{
		{0, "0s"},
		{time.Minute, "1m0s"},
		{12 * time.Hour, "12h0m0s"},
		{24 * time.Hour, "1d"},
		{720 * time.Hour, "30d"},
		{2160 * time.Hour, "90d"},
		{36 * time.Hour, "36h0m0s"},
		{-48 * time.Hour, "-2d"},
		{time.Duration(math.MaxInt64), time.Duration(math.MaxInt64).String()},
	}
	for _, tt := range tests {
		d := config.Duration(tt.in)
		if got := d.String(); got != tt.want {
			t.Errorf("Duration(%v).String() = %q, want %q", tt.in, got, tt.want)
		}
		back, err := config.ParseDuration(d.String())
		if err != nil || back != tt.in {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", d.String(), back, err, tt.in)
		}
	}
}

func TestDurationYAML(t *testing.T) {
	var v struct {
		D config.Duration `yaml:"d"`
	}
	if err := yaml.Unmarshal([]byte("d: 1d12h\n"), &v); err != nil {
		t.Fatal(err)
	}
	if got, want := v.D.D(), 36*time.Hour; got != want {
		t.Errorf("decoded %v, want %v", got, want)
	}
	out, err := yaml.Marshal(struct {
		D config.Duration `yaml:"d"`
	}{config.Duration(7 * 24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(out), "d: 7d\n"; got != want {
		t.Errorf("marshal = %q, want %q", got, want)
	}
	for _, in := range []string{"d: 60\n", "d: [1h]\n", "d: {a: 1}\n", "d: 1y\n"} {
		err := yaml.Unmarshal([]byte(in), &v)
		if err == nil {
			t.Errorf("Unmarshal(%q) succeeded, want an error", in)
			continue
		}
		if !strings.Contains(err.Error(), "line 1") {
			t.Errorf("Unmarshal(%q) error = %q, want it to name the line", in, err)
		}
	}

	var d config.Duration
	if err := d.UnmarshalText([]byte("2d")); err != nil || d.D() != 48*time.Hour {
		t.Errorf("UnmarshalText(2d) = %v, %v; want 48h", d, err)
	}
	if err := d.Set("nope"); err == nil {
		t.Error("Set(nope) succeeded")
	}
	if got, want := d.Type(), "duration"; got != want {
		t.Errorf("Type() = %q, want %q", got, want)
	}
}
