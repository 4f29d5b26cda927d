package config_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/config"
)

func TestValidateForwardAuth(t *testing.T) {
	grafana := config.Route{Match: "GET /grafana/", Resource: "applications", Action: "get", Object: "monitoring/grafana"}
	deploy := config.Route{Match: "POST /deploy/{project}/{app}", Resource: "applications", Action: "sync", Object: "{project}/{app}"}
	with := func(r config.Route, f func(*config.Route)) config.Route { f(&r); return r }
	tests := map[string]struct {
		headers string
		routes  []config.Route
		want    []string // settings with a problem
		say     string   // part of the message
	}{
		"ok/default headers":   {headers: "original", routes: []config.Route{grafana, deploy}},
		"ok/empty is original": {headers: ""},
		"ok/forwarded":         {headers: "forwarded"},
		"ok/envoy":             {headers: "envoy"},
		"ok/rest wildcard":     {routes: []config.Route{{Match: "/repos/{project}/{rest...}", Resource: "projects", Action: "get", Object: "{project}/{rest...}"}}},
		"fail/headers unknown": {headers: "traefik", want: []string{"forwardAuth.headers"}, say: `"forwarded"`},
		"fail/headers case":    {headers: "Original", want: []string{"forwardAuth.headers"}},
		"fail/duplicate pattern": {routes: []config.Route{grafana, with(grafana, func(r *config.Route) { r.Object = "x" })},
			want: []string{"forwardAuth.routes[1].match"}, say: "same pattern as routes[0]"},
		"fail/conflicting patterns": {routes: []config.Route{
			{Match: "GET /a/{x}/b", Resource: "r", Action: "a", Object: "{x}"},
			{Match: "GET /a/c/{y}", Resource: "r", Action: "a", Object: "{y}"},
		}, want: []string{"forwardAuth.routes[1].match"}, say: "conflicts with routes[0]"},
		"fail/bad pattern":   {routes: []config.Route{with(grafana, func(r *config.Route) { r.Match = "GET /a/{" })}, want: []string{"forwardAuth.routes[0].match"}, say: "not a valid ServeMux pattern"},
		"fail/empty pattern": {routes: []config.Route{with(grafana, func(r *config.Route) { r.Match = " " })}, want: []string{"forwardAuth.routes[0].match"}},
		"fail/host pattern":  {routes: []config.Route{with(grafana, func(r *config.Route) { r.Match = "GET example.com/grafana/" })}, want: []string{"forwardAuth.routes[0].match"}, say: "host patterns"},
		"fail/unknown wildcard in object": {routes: []config.Route{with(deploy, func(r *config.Route) { r.Object = "{project}/{name}" })},
			want: []string{"forwardAuth.routes[0].object"}, say: "{name}"},
		"fail/missing fields": {routes: []config.Route{{Match: "GET /x"}},
			want: []string{"forwardAuth.routes[0].action", "forwardAuth.routes[0].object", "forwardAuth.routes[0].resource"}},
		"fail/every problem at once": {headers: "nope", routes: []config.Route{grafana, grafana, {Match: "/{"}},
			want: []string{"forwardAuth.headers", "forwardAuth.routes[1].match", "forwardAuth.routes[2].action", "forwardAuth.routes[2].match", "forwardAuth.routes[2].object", "forwardAuth.routes[2].resource"}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			c := config.Default()
			c.ForwardAuth = config.ForwardAuth{Headers: tt.headers, Routes: tt.routes}
			err := c.Validate()
			if got := settingsOf(t, err); !slices.Equal(got, tt.want) {
				t.Fatalf("Validate() problems in %v (%v), want %v", got, err, tt.want)
			}
			if tt.say != "" && !strings.Contains(err.Error(), tt.say) {
				t.Errorf("error %q does not say %q", err, tt.say)
			}
		})
	}
}

func TestParseForwardAuthHeaders(t *testing.T) {
	c, err := config.Parse([]byte("forwardAuth:\n  routes:\n    - {match: \"GET /g/\", resource: applications, action: get, object: m/g}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.ForwardAuth.Headers, config.HeadersOriginal; got != want {
		t.Errorf("headers = %q, want the default %q", got, want)
	}
	c, err = config.Parse([]byte("forwardAuth: {headers: envoy}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.ForwardAuth.Headers, config.HeadersEnvoy; got != want {
		t.Errorf("headers = %q, want %q", got, want)
	}
}

func TestTrustedProxies(t *testing.T) {
	tests := map[string]struct {
		in   []string
		want []string // the parsed prefixes; nil with bad set
		bad  []string
		say  string
	}{
		"ok/none":             {in: nil},
		"ok/prefixes":         {in: []string{"10.0.0.0/8", "fd00::/8"}, want: []string{"10.0.0.0/8", "fd00::/8"}},
		"ok/single address":   {in: []string{"192.0.2.10", "2001:db8::1"}, want: []string{"192.0.2.10/32", "2001:db8::1/128"}},
		"fail/host bits":      {in: []string{"10.1.2.3/8"}, bad: []string{"forwardAuth.trustedProxies[0]"}, say: "write 10.0.0.0/8"},
		"fail/not an address": {in: []string{"10.0.0.0/8", "proxy.internal"}, bad: []string{"forwardAuth.trustedProxies[1]"}},
		"fail/zone":           {in: []string{"fe80::1%eth0"}, bad: []string{"forwardAuth.trustedProxies[0]"}},
		"fail/mapped":         {in: []string{"::ffff:10.0.0.0/104"}, bad: []string{"forwardAuth.trustedProxies[0]"}, say: "IPv4"},
		"fail/empty":          {in: []string{""}, bad: []string{"forwardAuth.trustedProxies[0]"}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			c := config.Default()
			c.ForwardAuth.TrustedProxies = tt.in
			err := c.Validate()
			if got := settingsOf(t, err); !slices.Equal(got, tt.bad) {
				t.Fatalf("Validate() problems in %v (%v), want %v", got, err, tt.bad)
			}
			if tt.say != "" && !strings.Contains(err.Error(), tt.say) {
				t.Errorf("error %q does not say %q", err, tt.say)
			}
			if tt.bad != nil {
				return
			}
			ps, err := c.ForwardAuth.TrustedProxyPrefixes()
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, p := range ps {
				got = append(got, p.String())
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("prefixes %v, want %v", got, tt.want)
			}
		})
	}
	c, err := config.Parse([]byte("forwardAuth:\n  trustedProxies: [10.0.0.0/8]\n"))
	if err != nil || !slices.Equal(c.ForwardAuth.TrustedProxies, []string{"10.0.0.0/8"}) {
		t.Fatalf("YAML forwardAuth.trustedProxies: %v %v", c.ForwardAuth.TrustedProxies, err)
	}
}
