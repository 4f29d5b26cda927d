package server

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
)

// appenders are the answers that encode themselves, each as its zero
// value (the test fills them).
var appenders = []jsonAppender{userInfoJSON{}, applicationJSON{}, verifyBody{}, errorBody{}}

// viaEncodingJSON is what writeJSON writes for v: json.Encoder's bytes,
// or nothing where it fails.
func viaEncodingJSON(v any) []byte {
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(v); err != nil {
		return nil
	}
	return buf.Bytes()
}

// viaWriteAnswer is the body writeAnswer writes for v.
func viaWriteAnswer(v jsonAppender) []byte {
	rec := httptest.NewRecorder()
	writeAnswer(rec, 200, v)
	return rec.Body.Bytes()
}

// jsonFiller fills values with random content by reflection, so that a
// field added to an answer's type gets content too.
type jsonFiller struct {
	rng    *rand.Rand
	pieces []string
	zones  []*time.Location
}

func newJSONFiller(seed uint64) *jsonFiller {
	return &jsonFiller{
		rng: rand.New(rand.NewPCG(seed, 2026)),
		pieces: []string{"a", "/", "Z", "0", " ", `"`, `\`, "\n", "\r", "\t", "\b", "\f", "\x00", "\x01", "\x1f", "\x7f",
			"<", ">", "&", "\xff", "\xc3", "\xe2\x80", "\xed\xa0\x80", "é", "\u2028", "\u2029", "日本", "\U0001F600", "%2e", "'", "role:admin"},
		zones: []*time.Location{time.UTC, time.Local, time.FixedZone("", -7*3600), time.FixedZone("X", 5*3600+1800),
			time.FixedZone("", 24*3600), time.FixedZone("", -25*3600+17)},
	}
}

func (f *jsonFiller) str() string {
	if f.rng.IntN(5) == 0 {
		return ""
	}
	var b strings.Builder
	for range f.rng.IntN(10) {
		b.WriteString(f.pieces[f.rng.IntN(len(f.pieces))])
	}
	return b.String()
}

func (f *jsonFiller) time() time.Time {
	switch f.rng.IntN(6) {
	case 0:
		return time.Time{}
	case 1: // outside what RFC 3339 can say: encoding/json fails
		return time.Date(10000+f.rng.IntN(100), 1, 1, 0, 0, 0, 0, time.UTC)
	case 2:
		return time.Date(-f.rng.IntN(100)-1, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	sec := f.rng.Int64N(253402300799) // years 1970..9999
	return time.Unix(sec, f.rng.Int64N(1e9)*int64(f.rng.IntN(2))).In(f.zones[f.rng.IntN(len(f.zones))])
}

func (f *jsonFiller) fill(v reflect.Value) {
	if v.Type() == reflect.TypeFor[time.Time]() {
		v.Set(reflect.ValueOf(f.time()))
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(f.str())
	case reflect.Bool:
		v.SetBool(f.rng.IntN(2) == 0)
	case reflect.Slice:
		switch f.rng.IntN(4) {
		case 0:
			v.SetZero()
		case 1:
			v.Set(reflect.MakeSlice(v.Type(), 0, 0))
		default:
			n := 1 + f.rng.IntN(3)
			s := reflect.MakeSlice(v.Type(), n, n)
			for i := range n {
				f.fill(s.Index(i))
			}
			v.Set(s)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			f.fill(v.Field(i))
		}
	default:
		panic("jsonFiller: no random " + v.Type().String())
	}
}

// Every answer that encodes itself is, byte for byte, what encoding/json
// writes for it, and fails where encoding/json fails (writeAnswer then
// writes what encoding/json does), over random values of every field:
// strings of every kind of byte the encoder treats specially (quotes,
// backslashes, control bytes, DEL, HTML characters, invalid UTF-8,
// U+2028 and U+2029, multi-byte runes), nil, empty and full lists, zero
// times, times in several zones and outside RFC 3339's years and offsets.
func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	f := newJSONFiller(15)
	failed := map[reflect.Type]int{}
	for _, zero := range appenders {
		typ := reflect.TypeOf(zero)
		for i := range 5000 {
			p := reflect.New(typ)
			f.fill(p.Elem())
			v := p.Elem().Interface()
			want := viaEncodingJSON(v)
			if want == nil {
				failed[typ]++
			}
			got, ok := v.(jsonAppender).appendJSON(nil)
			if ok != (want != nil) || ok && !bytes.Equal(append(got, '\n'), want) {
				t.Fatalf("%s #%d %#v:\n appendJSON %q (ok %v)\nencoding/json %q", typ, i, v, got, ok, want)
			}
			if got := viaWriteAnswer(v.(jsonAppender)); !bytes.Equal(got, want) {
				t.Fatalf("%s #%d: writeAnswer wrote %q, encoding/json %q", typ, i, got, want)
			}
		}
	}
	// The failure path was taken, for the types that can fail.
	for _, typ := range []reflect.Type{reflect.TypeFor[userInfoJSON](), reflect.TypeFor[applicationJSON]()} {
		if failed[typ] == 0 {
			t.Errorf("%s: no random value made encoding/json fail", typ)
		}
	}
}

// Converting a domain value to its answer type changes nothing
// encoding/json writes (a MarshalJSON given to the domain type later
// would, and fails this).
func TestAnswerTypesEncodeAsTheirDomainTypes(t *testing.T) {
	for _, c := range []struct{ answer, domain reflect.Type }{
		{reflect.TypeFor[userInfoJSON](), reflect.TypeFor[gatehouse.UserInfo]()},
		{reflect.TypeFor[applicationJSON](), reflect.TypeFor[gatehouse.Application]()},
	} {
		f := newJSONFiller(7)
		for range 200 {
			p := reflect.New(c.domain)
			f.fill(p.Elem())
			if a, d := viaEncodingJSON(p.Elem().Convert(c.answer).Interface()), viaEncodingJSON(p.Elem().Interface()); !bytes.Equal(a, d) {
				t.Fatalf("%s encodes %q, %s %q", c.answer, a, c.domain, d)
			}
		}
	}
}

// FuzzAppendJSON: whatever the strings and the time, every answer that
// encodes itself writes what encoding/json writes.
func FuzzAppendJSON(f *testing.F) {
	f.Add("alice", "role:admin", "<script>&\u2028", int64(1764547200), int64(0), int32(0), true)
	f.Add("\xff\x00\"\\", "\b\f\t", "", int64(-62135596801), int64(5), int32(-90000), false)
	f.Add("日本", "", "\x7f", int64(253402300800), int64(999999999), int32(86400), true)
	f.Fuzz(func(t *testing.T, s1, s2, s3 string, sec, nsec int64, offset int32, b bool) {
		ts := time.Unix(sec, nsec%1e9).In(time.FixedZone(s3, int(offset)))
		for _, v := range []jsonAppender{
			userInfoJSON{LoggedIn: b, Username: s1, Iss: s2, Groups: []string{s1, s3}, Roles: []string{s2}, TokenID: s3, TokenKind: gatehouse.TokenKind(s1), ExpiresAt: ts},
			applicationJSON{Name: s1, Project: s2, Spec: gatehouse.AppSpec{RepoURL: s3, Path: s1, TargetRevision: s2,
				Destination: gatehouse.AppDestination{Server: s3, Namespace: s1}},
				Status: gatehouse.AppStatus{Sync: s2, Health: s3, Revision: s1, Message: s2, ReportedAt: ts}, CreatedAt: ts},
			verifyBody{User: s1},
			errorBody{Error: s2, Message: s3},
		} {
			want := viaEncodingJSON(v)
			got, ok := v.appendJSON(nil)
			if ok != (want != nil) || ok && !bytes.Equal(append(got, '\n'), want) {
				t.Fatalf("%T: appendJSON %q (ok %v), encoding/json %q", v, got, ok, want)
			}
		}
	})
}
