package config_test

import (
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/gatehouse/gatehouse/config"
)

func FuzzParse(f *testing.F) {
	f.Add([]byte(""))
	f.Add([]byte("instanceName: prod\nlisten: ':8443'\ntokens:\n  maxLifetime: 7d\n  defaultLifetime: 1d12h\n"))
	f.Add([]byte("rbac:\n  policyCSV: |\n    p, role:x, applications, get, */*, allow\n  matchMode: regex\n"))
	f.Add([]byte("login: {maxFailures: 3, window: 10m, maxConcurrent: 2}\naudit: {retention: 365d}\n"))
	f.Add([]byte("tls:\n  cert: /nonexistent/cert.pem\n"))
	f.Add([]byte("base: &b {listen: ':1'}\ntokens:\n  <<: {maxLifetime: 1d}\n"))
	f.Add([]byte("a: &a [*a, *a]\n"))
	f.Add([]byte("listen: ':1'\n---\nlisten: ':2'\n"))
	f.Add([]byte("reaperInterval: 0.5d\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := config.Parse(data)
		if err != nil {
			if !reflect.DeepEqual(c, (config.Config{})) {
				t.Fatalf("Parse returned %+v with error %v", c, err)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Parse succeeded with a config that fails Validate: %v", err)
		}
		// What Parse accepts, Marshal writes back in a form Parse reads to
		// the same config.
		out, err := yaml.Marshal(c)
		if err != nil {
			t.Fatalf("Marshal(%+v): %v", c, err)
		}
		back, err := config.Parse(out)
		if err != nil {
			t.Fatalf("Parse(Marshal(c)) error: %v\n%s", err, out)
		}
		if !reflect.DeepEqual(back, c) {
			t.Fatalf("round trip:\n%+v\nwant\n%+v", back, c)
		}
	})
}

func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"0", "90s", "12h", "7d", "1d12h", "-1.5d", "+.5d", "1µs", "106751d", "106752d", "7", "1d-2h", "1..2d", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := config.ParseDuration(s)
		if err != nil {
			if got != 0 {
				t.Fatalf("ParseDuration(%q) = %v with error %v", s, got, err)
			}
			if !strings.Contains(err.Error(), "invalid duration") {
				t.Fatalf("ParseDuration(%q) error %q does not say invalid duration", s, err)
			}
		} else {
			// String is a lossless inverse.
			str := config.Duration(got).String()
			back, err := config.ParseDuration(str)
			if err != nil || back != got {
				t.Fatalf("ParseDuration(%q) = %v; its String %q parses to %v, %v", s, got, str, back, err)
			}
		}
		// Without the day unit, the syntax is exactly Go's (except that the
		// single value math.MinInt64 is out of range here).
		if strings.Contains(s, "d") {
			return
		}
		want, werr := time.ParseDuration(s)
		if werr == nil && want == math.MinInt64 {
			return
		}
		if (err == nil) != (werr == nil) || got != want {
			t.Fatalf("ParseDuration(%q) = %v, %v; time.ParseDuration = %v, %v", s, got, err, want, werr)
		}
	})
}
