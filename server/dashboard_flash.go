package server

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/seal"
)

// A freshly minted token reaches the browser once, whichever replica
// serves the page after the redirect. The POST that mints it seals the
// token into a short-lived cookie scoped to the copy-once page and
// redirects; the GET that follows opens it with the session cookie, shows
// the token and clears the cookie, so a reload finds nothing. The secret
// never travels in a URL and no replica keeps it.
//
// The sealing key is derived with HKDF-SHA256 from the session cookie's
// value, whose secret the server never stores (it keeps only a hash), and
// a random salt per seal; the seal is AES-256-GCM with a random nonce. So
// the replicas need no shared key, and only the browser holding the very
// session that minted the token can open it: the sealed payload also
// names that session token's id and an expiry, and the cookie's name and
// the session id are authenticated as additional data.
//
// The replica that opens a seal remembers its nonce until the seal
// expires and refuses a replayed copy of the cookie; another replica
// would open such a copy until then. That exposes nothing: opening takes
// the session secret, and whoever holds it can derive the key alone, or
// mint a token of their own.

const (
	flashCookie = "gatehouse.flash"
	flashPath   = "/tokens/created"
	flashTTL    = 2 * time.Minute
	// flashSpentCapacity bounds the nonces of opened seals kept until they
	// expire; beyond it the one closest to expiry is forgotten first.
	flashSpentCapacity = 10000

	flashInfo = "gatehouse dashboard flash v1"
	// flashMaxLabel clips the owner label sealed for the page, so the
	// cookie stays well below the 4 KiB browsers keep.
	flashMaxLabel = 200
	// flashMaxCookie is the longest cookie value sealed or opened.
	flashMaxCookie = 4000
)

// flashToken is a minted token waiting to be shown once.
type flashToken struct {
	Token gatehouse.NewToken `json:"t"`
	Owner string             `json:"o"` // who the token acts as, for the page
	Back  string             `json:"b"` // where "Done" goes
}

var flashEncoding = base64.RawURLEncoding.Strict()

// sealedFlash is the sealed payload.
type sealedFlash struct {
	flashToken
	Session []byte `json:"s"` // the session token that minted it; only it may open it
	Expires int64  `json:"e"` // Unix milliseconds
}

// flashSealer seals minted tokens into cookies and opens them, once per
// replica.
type flashSealer struct {
	now      func() time.Time
	rand     io.Reader
	ttl      time.Duration
	capacity int

	mu    sync.Mutex
	spent map[string]time.Time // nonce of an opened seal -> its expiry
}

func newFlashSealer(now func() time.Time, rand io.Reader, ttl time.Duration, capacity int) *flashSealer {
	return &flashSealer{now: now, rand: rand, ttl: ttl, capacity: capacity, spent: map[string]time.Time{}}
}

// seal returns the cookie value that carries f for the session whose
// cookie value is secret and whose token id is session.
func (s *flashSealer) seal(secret, session string, f flashToken) (string, error) {
	f.Token.IssuedAt = time.Time{} // not shown; keep the cookie small
	f.Owner = clip(f.Owner, flashMaxLabel)
	plain, err := json.Marshal(sealedFlash{flashToken: f, Session: []byte(session), Expires: s.now().Add(s.ttl).UnixMilli()})
	if err != nil {
		return "", gatehouse.Internal(err)
	}
	b, err := seal.Sealer{Secret: []byte(secret), Rand: s.rand}.Seal(plain, flashInfo, flashAD(session))
	if err != nil {
		return "", gatehouse.Internal(err)
	}
	v := flashEncoding.EncodeToString(b)
	if len(v) > flashMaxCookie {
		return "", gatehouse.Errorf(gatehouse.EINTERNAL, "sealed token is %d bytes, more than a cookie holds", len(v))
	}
	return v, nil
}

// take opens value for the session and returns the token if the seal is
// intact, meant for this session, not expired and not opened here before.
func (s *flashSealer) take(value, secret, session string) (flashToken, bool) {
	now := s.now()
	f, nonce, exp, ok := openFlash(value, secret, session, now)
	if !ok {
		return flashToken{}, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, e := range s.spent {
		if !now.Before(e) {
			delete(s.spent, k)
		}
	}
	if _, seen := s.spent[nonce]; seen {
		return flashToken{}, false
	}
	if len(s.spent) >= s.capacity {
		var oldest string
		for k, e := range s.spent {
			if oldest == "" || e.Before(s.spent[oldest]) {
				oldest = k
			}
		}
		delete(s.spent, oldest)
	}
	s.spent[nonce] = exp
	return f, true
}

// openFlash opens a sealed cookie value: it checks the seal with the key
// of the session's secret, then that the payload names the session and
// has not expired at now. It returns the seal's nonce and expiry too.
func openFlash(value, secret, session string, now time.Time) (f flashToken, nonce string, exp time.Time, ok bool) {
	// Canonical base64 only (the decoder would skip line breaks), so that
	// one seal has one spelling.
	if len(value) > flashMaxCookie || strings.ContainsAny(value, "\r\n") {
		return flashToken{}, "", time.Time{}, false
	}
	b, err := flashEncoding.DecodeString(value)
	if err != nil {
		return flashToken{}, "", time.Time{}, false
	}
	plain, err := seal.Sealer{Secret: []byte(secret)}.Open(b, flashInfo, flashAD(session))
	if err != nil {
		return flashToken{}, "", time.Time{}, false
	}
	var p sealedFlash
	if json.Unmarshal(plain, &p) != nil || string(p.Session) != session {
		return flashToken{}, "", time.Time{}, false
	}
	exp = time.UnixMilli(p.Expires)
	if !now.Before(exp) {
		return flashToken{}, "", time.Time{}, false
	}
	return p.flashToken, string(b[1:seal.Head]), exp, true
}

// flashAD is the additional data of a seal: a seal made for this cookie
// and session opens for nothing else.
func flashAD(session string) []byte {
	return []byte(flashCookie + "\x00" + session)
}

// clip shortens s to at most n bytes, on a rune boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

func (d *dashboard) setFlashCookie(w http.ResponseWriter, value string) {
	http.SetCookie(w, &http.Cookie{
		Name: flashCookie, Value: value, Path: flashPath, MaxAge: int(flashTTL / time.Second),
		HttpOnly: true, Secure: d.s.tls, SameSite: http.SameSiteStrictMode,
	})
}

func (d *dashboard) clearFlashCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{
		Name: flashCookie, Value: "", Path: flashPath, MaxAge: -1,
		HttpOnly: true, Secure: d.s.tls, SameSite: http.SameSiteStrictMode,
	})
}
