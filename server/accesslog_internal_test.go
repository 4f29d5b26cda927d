package server

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// slogLine is what slog.NewJSONHandler with default options writes for
// the record of the access log line l.
func slogLine(t testing.TB, l *accessLine) []byte {
	var buf bytes.Buffer
	rec := slog.NewRecord(l.time, l.level, "request", 0)
	rec.AddAttrs(slog.String("request_id", l.id), slog.String("method", l.method), slog.String("path", l.path),
		slog.String("route", l.route), slog.Int("status", l.status), slog.Duration("duration", l.duration),
		slog.String("remote", l.remote))
	if err := slog.NewJSONHandler(&buf, nil).Handle(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// loggedLine is what the access log writes through the logger, when it
// has no writer.
func loggedLine(l *accessLine) []byte {
	var buf bytes.Buffer
	newAccessLog(slog.New(slog.NewJSONHandler(&buf, nil)), nil).write(context.Background(), l)
	return buf.Bytes()
}

// directLine is what the access log writes straight onto the log's writer.
func directLine(l *accessLine) []byte {
	var buf bytes.Buffer
	a := newAccessLog(slog.New(slog.NewJSONHandler(&buf, nil)), &buf)
	a.write(context.Background(), l)
	return buf.Bytes()
}

// The access log's own encoding, and its fallback through the logger, are
// byte for byte slog's, over random
// lines whose strings mix every kind of byte the JSON encoder treats
// specially: quotes, backslashes, control bytes, DEL, HTML characters,
// invalid UTF-8, U+2028 and U+2029, and multi-byte runes.
func TestAccessLineIsSlogs(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 2026))
	pieces := []string{"a", "/", "Z", "0", " ", `"`, `\`, "\n", "\r", "\t", "\b", "\f", "\x00", "\x01", "\x1f", "\x7f",
		"<", ">", "&", "\xff", "\xc3", "\xe2\x80", "é", "\u2028", "\u2029", "日本", "\U0001F600", "%2e", "'"}
	str := func() string {
		var b strings.Builder
		for range rng.IntN(12) {
			b.WriteString(pieces[rng.IntN(len(pieces))])
		}
		return b.String()
	}
	zones := []*time.Location{time.UTC, time.FixedZone("", -7*3600), time.FixedZone("X", 5*3600+1800)}
	const cases = 5000
	for i := range cases {
		l := &accessLine{
			time:     time.Unix(rng.Int64N(4e9), rng.Int64N(1e9)).In(zones[rng.IntN(len(zones))]),
			level:    []slog.Level{slog.LevelInfo, slog.LevelError}[rng.IntN(2)],
			id:       str(),
			method:   str(),
			path:     str(),
			route:    str(),
			status:   rng.IntN(1000) - 1,
			duration: time.Duration(rng.Int64() - rng.Int64()),
			remote:   str(),
		}
		if i%7 == 0 {
			l.time = time.Now() // with a monotonic reading, as the middleware's
		}
		got, want := directLine(l), slogLine(t, l)
		if !bytes.Equal(got, want) {
			t.Fatalf("case %d: the access log wrote\n%s\nslog writes\n%s", i, got, want)
		}
		if logged := loggedLine(l); !bytes.Equal(logged, want) {
			t.Fatalf("case %d: through the logger the access log wrote\n%s\nslog writes\n%s", i, logged, want)
		}
		if !json.Valid(bytes.TrimSuffix(got, []byte("\n"))) {
			t.Fatalf("case %d: not JSON: %s", i, got)
		}
	}
}

// A level the logger does not log is not written on either path.
func TestAccessLineLevel(t *testing.T) {
	for _, direct := range []bool{false, true} {
		var buf bytes.Buffer
		log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelError}))
		a := newAccessLog(log, nil)
		if direct {
			a = newAccessLog(log, &buf)
		}
		a.write(context.Background(), &accessLine{time: time.Now(), level: slog.LevelInfo, path: "/healthz"})
		if buf.Len() != 0 {
			t.Fatalf("direct %v: an INFO line was written below an ERROR level: %s", direct, buf.Bytes())
		}
		a.write(context.Background(), &accessLine{time: time.Now(), level: slog.LevelError, path: "/x", status: 500})
		if !strings.Contains(buf.String(), `"level":"ERROR","msg":"request"`) || !strings.Contains(buf.String(), `"status":500`) {
			t.Fatalf("direct %v: the ERROR line is missing: %q", direct, buf.String())
		}
	}
}

func FuzzAccessLine(f *testing.F) {
	f.Add("GET", "/api/v1/session/userinfo", "GET /api/v1/session/userinfo", "127.0.0.1", 200, int64(123456))
	f.Add("X\"", "/a\\b\n\x00\x7f\xff\u2028<&>", "unmatched", "::1", 499, int64(-1))
	f.Fuzz(func(t *testing.T, method, path, route, remote string, status int, d int64) {
		l := &accessLine{time: time.Unix(1764700000, 123456789), level: slog.LevelInfo, id: "0123456789abcdef",
			method: method, path: path, route: route, status: status, duration: time.Duration(d), remote: remote}
		want := slogLine(t, l)
		if got := directLine(l); !bytes.Equal(got, want) {
			t.Fatalf("the access log wrote\n%q\nslog writes\n%q", got, want)
		}
		if got := loggedLine(l); !bytes.Equal(got, want) {
			t.Fatalf("through the logger the access log wrote\n%q\nslog writes\n%q", got, want)
		}
	})
}
