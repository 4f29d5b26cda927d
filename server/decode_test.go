package server

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"
)

// decodeBody runs decode on a JSON request body into a generic object.
func decodeBody(body []byte) (map[string]any, error) {
	r := httptest.NewRequest("POST", "/api/v1/x", bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	var v map[string]any
	err := decode(r, &v)
	return v, err
}

func TestDecodeRefusesWhatEncodingJSONWouldRewrite(t *testing.T) {
	for _, tc := range []struct {
		body string
		ok   bool
	}{
		{`{"a":"b"}`, true},
		{` {"a":"\ud83d\ude00"}`, true}, // a surrogate pair is one character
		{`{"a":"\\ud800"}`, true},       // an escaped backslash, not an escape
		{`null`, false},
		{`[]`, false},
		{`"x"`, false},
		{``, false},
		{`{"a":"\ud800"}`, false},       // lone high surrogate
		{`{"a":"\udc00"}`, false},       // lone low surrogate
		{`{"a":"\ud800\u0041"}`, false}, // high surrogate, then no low one
		{"{\"a\":\"\xff\"}", false},     // invalid UTF-8
		{`{"a":1}{"b":2}`, false},
	} {
		_, err := decodeBody([]byte(tc.body))
		if (err == nil) != tc.ok {
			t.Errorf("decode(%q) error = %v, want ok=%v", tc.body, err, tc.ok)
		}
	}
}

// FuzzDecodeBody: decode never panics, and what it accepts is a JSON object
// whose strings encoding/json did not have to repair: no U+FFFD appears
// that the body did not spell.
func FuzzDecodeBody(f *testing.F) {
	for _, s := range []string{`{"a":"b"}`, `{"a":"\ud800"}`, `{"a":"\ud83d\ude00"}`, "{\"a\":\"\xff\"}", `null`, `{"a":[1,{"b":"\\u"}]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		v, err := decodeBody(body)
		if err != nil {
			return
		}
		if !utf8.Valid(body) {
			t.Fatalf("accepted invalid UTF-8: %q", body)
		}
		if v == nil {
			t.Fatalf("accepted %q as no object", body)
		}
		out, _ := json.Marshal(v)
		spelled := bytes.Contains(body, []byte("\uFFFD")) || strings.Contains(strings.ToLower(string(body)), `\ufffd`)
		if bytes.Contains(out, []byte("\uFFFD")) && !spelled {
			t.Fatalf("accepted %q, which decodes with a replacement character", body)
		}
	})
}
