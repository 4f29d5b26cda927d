package server

import (
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse"
)

// A freshly minted token reaches the browser once: the POST that mints it
// parks the secret here under a random id, sets that id in a short-lived
// cookie and redirects; the GET that follows takes the entry out and shows
// it. A reload finds nothing. The secret never travels in a URL, and it
// lives in memory for at most flashTTL.

const (
	flashCookie   = "gatehouse.flash"
	flashPath     = "/tokens/created"
	flashTTL      = 2 * time.Minute
	flashCapacity = 10000
)

// flashToken is a minted token waiting to be shown once.
type flashToken struct {
	Token   gatehouse.NewToken
	Owner   string // who the token acts as, for the page
	Back    string // where "Done" goes
	session string // the session that minted it; only it may take it
	expires time.Time
}

// flashStore holds minted tokens until they are shown or expire.
type flashStore struct {
	now      func() time.Time
	rand     io.Reader
	ttl      time.Duration
	capacity int

	mu sync.Mutex
	m  map[string]flashToken
}

func newFlashStore(now func() time.Time, rand io.Reader, ttl time.Duration, capacity int) *flashStore {
	return &flashStore{now: now, rand: rand, ttl: ttl, capacity: capacity, m: map[string]flashToken{}}
}

// put parks f for session and returns its id.
func (s *flashStore) put(session string, f flashToken) (string, error) {
	id, err := randomID(s.rand)
	if err != nil {
		return "", err
	}
	now := s.now()
	f.session = session
	f.expires = now.Add(s.ttl)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweep(now)
	if len(s.m) >= s.capacity {
		// Full of live entries: drop the one closest to expiry rather
		// than refuse, since the token is already minted.
		var oldest string
		for k, v := range s.m {
			if oldest == "" || v.expires.Before(s.m[oldest].expires) {
				oldest = k
			}
		}
		delete(s.m, oldest)
	}
	s.m[id] = f
	return id, nil
}

// take removes the entry and returns it if it is still live and belongs
// to session. Whatever the answer, the entry is gone: it is single-use.
func (s *flashStore) take(id, session string) (flashToken, bool) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.m[id]
	delete(s.m, id)
	s.sweep(now)
	if !ok || f.session != session || !now.Before(f.expires) {
		return flashToken{}, false
	}
	return f, true
}

// len reports how many entries are held (live or not yet swept).
func (s *flashStore) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}

// sweep drops expired entries; callers hold mu.
func (s *flashStore) sweep(now time.Time) {
	for k, v := range s.m {
		if !now.Before(v.expires) {
			delete(s.m, k)
		}
	}
}

func (d *dashboard) setFlashCookie(w http.ResponseWriter, id string) {
	http.SetCookie(w, &http.Cookie{
		Name: flashCookie, Value: id, Path: flashPath, MaxAge: int(flashTTL / time.Second),
		HttpOnly: true, Secure: d.s.tls, SameSite: http.SameSiteStrictMode,
	})
}

func (d *dashboard) clearFlashCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{
		Name: flashCookie, Value: "", Path: flashPath, MaxAge: -1,
		HttpOnly: true, Secure: d.s.tls, SameSite: http.SameSiteStrictMode,
	})
}
