package server

import (
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/gatehouse/gatehouse"
)

// The answers on the hot paths (userinfo, an application, forward auth,
// refusals) encode themselves. encoding/json walks a value's type by
// reflection on every call and runs what a field's MarshalJSON returns
// (time.Time's included) through its scanner again; for a userinfo answer
// that was about a quarter of the handler's cost. A jsonAppender writes
// exactly the bytes encoding/json writes for it, so the wire format stays
// one: TestAppendJSONMatchesEncodingJSON fills every field of every such
// type by reflection with random values (a field added to a type and not
// to its appendJSON fails it), and FuzzAppendJSON runs on. That is
// encoding/json as Go builds it by default: under GOEXPERIMENT=jsonv2 it
// writes invalid UTF-8 as a raw U+FFFD instead of \ufffd, and the tests
// say so.
type jsonAppender interface {
	// appendJSON appends the value as json.Marshal encodes it; false
	// (and b unusable) where json.Marshal would fail, so that writeAnswer
	// falls back to encoding/json and fails as it does.
	appendJSON(b []byte) ([]byte, bool)
}

// jsonBufs holds the buffers answers are encoded into; net/http copies
// what is written before Write returns.
var jsonBufs = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// writeJSON answers with v encoded by encoding/json.
func writeJSON(w http.ResponseWriter, status int, v any) {
	setJSONHeaders(w, status)
	// A failed write means the client went away; there is no one to tell.
	_ = json.NewEncoder(w).Encode(v)
}

// writeAnswer answers with an answer that encodes itself, or through
// writeJSON where encoding/json would fail, to fail as it does. Generic,
// so that the value is not copied to the heap on the way, as an any
// would be.
func writeAnswer[T jsonAppender](w http.ResponseWriter, status int, v T) {
	bp := jsonBufs.Get().(*[]byte)
	defer jsonBufs.Put(bp)
	b, ok := v.appendJSON((*bp)[:0])
	if cap(b) <= 4<<10 {
		*bp = b[:0]
	}
	if !ok {
		writeJSON(w, status, v)
		return
	}
	setJSONHeaders(w, status)
	_, _ = w.Write(append(b, '\n')) // as json.Encoder ends a value
}

func setJSONHeaders(w http.ResponseWriter, status int) {
	h := w.Header()
	h["Content-Type"] = hdrJSON // canonical keys, shared values (never written in place): see middleware
	h["Cache-Control"] = hdrNoStore
	w.WriteHeader(status)
}

// userInfoJSON is the userinfo answer.
type userInfoJSON gatehouse.UserInfo

func (u userInfoJSON) appendJSON(b []byte) ([]byte, bool) {
	b = append(b, `{"loggedIn":`...)
	b = strconv.AppendBool(b, u.LoggedIn)
	b = appendOmitEmpty(b, `,"username":`, u.Username)
	b = appendOmitEmpty(b, `,"iss":`, u.Iss)
	b = appendStrings(b, `,"groups":`, u.Groups)
	b = appendStrings(b, `,"roles":`, u.Roles)
	b = appendOmitEmpty(b, `,"tokenId":`, u.TokenID)
	b = appendOmitEmpty(b, `,"tokenKind":`, string(u.TokenKind))
	b, ok := appendOmitZeroTime(b, `,"expiresAt":`, u.ExpiresAt)
	return append(b, '}'), ok
}

// applicationJSON is an application answer.
type applicationJSON gatehouse.Application

func (a applicationJSON) appendJSON(b []byte) ([]byte, bool) {
	b = append(b, `{"name":`...)
	b = appendAPIString(b, a.Name)
	b = append(b, `,"project":`...)
	b = appendAPIString(b, a.Project)
	b = append(b, `,"spec":{"repoURL":`...)
	b = appendAPIString(b, a.Spec.RepoURL)
	b = append(b, `,"path":`...)
	b = appendAPIString(b, a.Spec.Path)
	b = append(b, `,"targetRevision":`...)
	b = appendAPIString(b, a.Spec.TargetRevision)
	b = append(b, `,"destination":{"server":`...)
	b = appendAPIString(b, a.Spec.Destination.Server)
	b = append(b, `,"namespace":`...)
	b = appendAPIString(b, a.Spec.Destination.Namespace)
	b = append(b, `}},"status":{"sync":`...)
	b = appendAPIString(b, a.Status.Sync)
	b = append(b, `,"health":`...)
	b = appendAPIString(b, a.Status.Health)
	b = appendOmitEmpty(b, `,"revision":`, a.Status.Revision)
	b = appendOmitEmpty(b, `,"message":`, a.Status.Message)
	b, ok := appendOmitZeroTime(b, `,"reportedAt":`, a.Status.ReportedAt)
	b = append(b, `},"createdAt":`...)
	b, ok2 := appendTime(b, a.CreatedAt)
	return append(b, '}'), ok && ok2
}

func (v verifyBody) appendJSON(b []byte) ([]byte, bool) {
	b = append(b, `{"user":`...)
	return append(appendAPIString(b, v.User), '}'), true
}

func (e errorBody) appendJSON(b []byte) ([]byte, bool) {
	b = append(b, `{"error":`...)
	b = appendAPIString(b, e.Error)
	b = append(b, `,"message":`...)
	return append(appendAPIString(b, e.Message), '}'), true
}

// appendOmitEmpty appends key and s unless s is empty (omitempty).
func appendOmitEmpty(b []byte, key, s string) []byte {
	if s == "" {
		return b
	}
	return appendAPIString(append(b, key...), s)
}

// appendStrings appends key and a list unless it is empty (omitempty).
func appendStrings(b []byte, key string, ss []string) []byte {
	if len(ss) == 0 {
		return b
	}
	b = append(b, key...)
	for i, s := range ss {
		if i == 0 {
			b = append(b, '[')
		} else {
			b = append(b, ',')
		}
		b = appendAPIString(b, s)
	}
	return append(b, ']')
}

// appendOmitZeroTime appends key and t unless t is zero (omitzero); false
// as appendTime.
func appendOmitZeroTime(b []byte, key string, t time.Time) ([]byte, bool) {
	if t.IsZero() {
		return b, true
	}
	return appendTime(append(b, key...), t)
}

// appendTime appends t as time.Time's MarshalJSON does (RFC 3339 with
// nanoseconds, quoted); false where that fails (a year outside 0–9999, a
// zone offset of a day or more). The text holds nothing to escape.
func appendTime(b []byte, t time.Time) ([]byte, bool) {
	b = append(b, '"')
	b, err := t.AppendText(b)
	return append(b, '"'), err == nil
}

// appendAPIString appends s quoted as encoding/json quotes a string by
// default: HTML's <, > and & escaped too, and \b and \f by name.
func appendAPIString(b []byte, s string) []byte { return appendQuoted(b, s, true) }

// appendLogString appends s quoted as slog's JSON handler quotes it.
func appendLogString(b []byte, s string) []byte { return appendQuoted(b, s, false) }

// appendQuoted appends s as a JSON string: '"', '\\' and control bytes
// escaped (\n, \r, \t by name, and with api \b and \f), invalid UTF-8 as
// U+FFFD, U+2028 and U+2029 escaped; with api also '<', '>' and '&', as
// encoding/json does and slog does not.
func appendQuoted(b []byte, s string, api bool) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && (!api || c != '<' && c != '>' && c != '&') {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case api && c == '\b':
				b = append(b, '\\', 'b')
			case api && c == '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
