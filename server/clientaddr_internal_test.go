package server

import (
	"math/rand/v2"
	"net/http"
	"net/netip"
	"strings"
	"testing"
)

// addrPool mixes trusted proxies, clients, and entries that are not
// addresses at all.
var addrPool = []string{
	"10.0.0.1", "10.1.2.3", "127.0.0.1", "::1", // trusted below
	"198.51.100.7", "203.0.113.9", "2001:db8::5", "[2001:db8::6]:443", "192.0.2.1:5555", "::ffff:198.51.100.8",
	"", "unknown", "10.0.0.1/8", "fe80::1%eth0", "1.2.3", " 198.51.100.9 ", "_hidden",
}

func fwdWithTrust(prefixes ...string) *forwardAuth {
	f := &forwardAuth{}
	for _, p := range prefixes {
		f.trusted = append(f.trusted, netip.MustParsePrefix(p))
	}
	return f
}

func verifyReq(peer string, xff []string, realIP string) *http.Request {
	r, _ := http.NewRequest("GET", "http://gatehouse/api/v1/auth/verify", nil)
	r.RemoteAddr = netip.AddrPortFrom(netip.MustParseAddr(peer), 40000).String()
	for _, v := range xff {
		r.Header.Add("X-Forwarded-For", v)
	}
	if realIP != "" {
		r.Header.Set("X-Real-IP", realIP)
	}
	return r
}

// TestClientAddrProperties checks, over random header values from a fixed
// seed, what a client can and cannot make the audit record say:
//   - from a peer that is not a trusted proxy, the headers are ignored;
//   - the address recorded is the peer or one that a header carried;
//   - whatever a client puts in front of the hops a trusted proxy added
//     changes nothing once a hop names an untrusted address: the client
//     cannot hide behind an address of its choosing.
func TestClientAddrProperties(t *testing.T) {
	f := fwdWithTrust("10.0.0.0/8", "127.0.0.0/8", "::1/128")
	rng := rand.New(rand.NewPCG(18, 2026))
	pick := func() string { return addrPool[rng.IntN(len(addrPool))] }
	hopList := func(n int) []string {
		var vals []string
		for range n {
			var parts []string
			for range 1 + rng.IntN(3) {
				parts = append(parts, pick())
			}
			vals = append(vals, strings.Join(parts, ","))
		}
		return vals
	}
	peers := []string{"127.0.0.1", "10.9.9.9", "::1", "198.51.100.1", "2001:db8::1"}
	const cases = 20000
	for i := range cases {
		peer := peers[rng.IntN(len(peers))]
		xff := hopList(rng.IntN(3))
		realIP := ""
		if rng.IntN(2) == 0 {
			realIP = pick()
		}
		got := f.clientAddr(verifyReq(peer, xff, realIP))
		peerAddr := netip.MustParseAddr(peer)
		if !f.isTrusted(peerAddr) {
			if got != peer {
				t.Fatalf("case %d: untrusted peer %s with XFF %q X-Real-IP %q recorded as %q", i, peer, xff, realIP, got)
			}
			continue
		}
		a, err := netip.ParseAddr(got)
		if err != nil {
			t.Fatalf("case %d: recorded %q, not an address", i, got)
		}
		if got != peer && !headerCarries(xff, realIP, a) {
			t.Fatalf("case %d: recorded %q, which neither the peer nor a header named (XFF %q, X-Real-IP %q)", i, got, xff, realIP)
		}
		// A client prepending hops of its choosing changes nothing once
		// the walk has found an untrusted client.
		if len(xff) > 0 && !f.isTrusted(a) {
			forged := append(hopList(1+rng.IntN(2)), xff...)
			if again := f.clientAddr(verifyReq(peer, forged, realIP)); again != got {
				t.Fatalf("case %d: prepending %q to XFF %q moved the client from %s to %s", i, forged[:len(forged)-len(xff)], xff, got, again)
			}
		}
	}
	t.Logf("%d cases", cases)
}

func headerCarries(xff []string, realIP string, a netip.Addr) bool {
	for _, v := range append(strings.Split(strings.Join(xff, ","), ","), realIP) {
		if h, ok := parseHop(v); ok && h == a {
			return true
		}
	}
	return false
}

func TestClientAddrExamples(t *testing.T) {
	f := fwdWithTrust("10.0.0.0/8", "127.0.0.0/8")
	for _, tc := range []struct {
		peer   string
		xff    []string
		realIP string
		want   string
	}{
		{"127.0.0.1", nil, "", "127.0.0.1"},
		{"127.0.0.1", []string{"198.51.100.7"}, "", "198.51.100.7"},
		{"127.0.0.1", []string{"203.0.113.1, 198.51.100.7"}, "", "198.51.100.7"},           // rightmost untrusted
		{"127.0.0.1", []string{"203.0.113.1, 198.51.100.7, 10.0.0.2"}, "", "198.51.100.7"}, // past a trusted hop
		{"127.0.0.1", []string{"203.0.113.1", "198.51.100.7"}, "", "198.51.100.7"},         // two header lines
		{"127.0.0.1", []string{"10.0.0.3, 10.0.0.2"}, "", "10.0.0.3"},                      // all trusted: the farthest
		{"127.0.0.1", []string{"198.51.100.7, garbage"}, "", "127.0.0.1"},                  // malformed: stop at the last good one
		{"127.0.0.1", []string{"198.51.100.7, garbage, 10.0.0.2"}, "", "10.0.0.2"},
		{"127.0.0.1", []string{"[2001:db8::6]:443"}, "", "2001:db8::6"},
		{"127.0.0.1", []string{"::ffff:198.51.100.8"}, "", "198.51.100.8"},
		{"127.0.0.1", []string{"fe80::1%eth0"}, "", "127.0.0.1"},
		{"127.0.0.1", nil, "198.51.100.9", "198.51.100.9"},
		{"127.0.0.1", nil, "not an address", "127.0.0.1"},
		{"127.0.0.1", []string{"198.51.100.7"}, "203.0.113.1", "198.51.100.7"},   // X-Forwarded-For first
		{"198.51.100.1", []string{"203.0.113.1"}, "203.0.113.2", "198.51.100.1"}, // untrusted peer
	} {
		if got := f.clientAddr(verifyReq(tc.peer, tc.xff, tc.realIP)); got != tc.want {
			t.Errorf("peer %s XFF %q X-Real-IP %q: %q, want %q", tc.peer, tc.xff, tc.realIP, got, tc.want)
		}
	}
}

// FuzzClientAddr: any header values from a trusted proxy give an address,
// never a panic, and it is the peer or one a header named.
func FuzzClientAddr(f *testing.F) {
	f.Add("198.51.100.7, 10.0.0.1", "")
	f.Add("", "203.0.113.5")
	f.Add("[2001:db8::1]:80,,x", "::1")
	fa := fwdWithTrust("10.0.0.0/8", "127.0.0.0/8", "::1/128")
	f.Fuzz(func(t *testing.T, xff, realIP string) {
		var hops []string
		if xff != "" {
			hops = []string{xff}
		}
		got := fa.clientAddr(verifyReq("127.0.0.1", hops, realIP))
		a, err := netip.ParseAddr(got)
		if err != nil {
			t.Fatalf("recorded %q, not an address", got)
		}
		if got != "127.0.0.1" && !headerCarries(hops, realIP, a) {
			t.Fatalf("recorded %q, named by no header (XFF %q, X-Real-IP %q)", got, xff, realIP)
		}
	})
}

// When the client recorded is the trusted peer itself, it is spelled as
// clientIP spells the peer in every other audit record, whichever way the
// walk got there (no header, an unusable X-Real-IP, a malformed hop).
func TestClientAddrNamesThePeerAsClientIPDoes(t *testing.T) {
	f := fwdWithTrust("2001:db8::/32", "127.0.0.0/8")
	for _, remote := range []string{"[2001:DB8::1]:1", "[2001:0db8::1]:1", "[2001:db8:0:0::1]:1", "127.0.0.1:9"} {
		for _, h := range []http.Header{
			{},
			{"X-Real-Ip": {"not an address"}},
			{"X-Forwarded-For": {"garbage"}},
			{"X-Forwarded-For": {"198.51.100.7, garbage"}},
		} {
			r, _ := http.NewRequest("GET", "http://gatehouse/api/v1/auth/verify", nil)
			r.RemoteAddr, r.Header = remote, h
			if got, want := f.clientAddr(r), clientIP(r); got != want {
				t.Errorf("peer %s, headers %v: %q, want %q (clientIP)", remote, h, got, want)
			}
		}
	}
}
