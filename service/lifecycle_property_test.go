package service_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/service"
	"github.com/gatehouse/gatehouse/store/sqlite"
)

// modelToken is what the rotation property test expects of one token.
type modelToken struct {
	text, id, family string
	rotated          bool      // rotated away
	graceEnd         time.Time // when rotated away: the end of its grace (zero: none)
	stored           bool      // still in the store
	deleted          bool      // revoked or removed: never works again
}

// works is the model's answer: a token works while it is stored, not
// rotated away, or rotated away and within its grace.
func (m *modelToken) works(now time.Time) bool {
	return m.stored && !m.deleted && (!m.rotated || (!m.graceEnd.IsZero() && now.Before(m.graceEnd)))
}

// Over random sequences of mints, rotations with and without grace,
// revocations, reaper runs, the clock moving and tokens presented, with a
// fixed seed: a token works exactly when the model says; a token rotated
// away and presented after its grace (whether or not it was removed
// before) revokes every token of its family and nothing else; and the
// store holds exactly the tokens the model says.
func TestRotationReuseProperty(t *testing.T) {
	runs, steps := 40, 150
	if testing.Short() {
		runs = 8
	}
	for run := range runs {
		t.Run(fmt.Sprint(run), func(t *testing.T) { rotationReuseRun(t, uint64(run), steps) })
	}
}

func rotationReuseRun(t *testing.T, seed uint64, steps int) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	var mu sync.Mutex
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	w := service.NewTestWorld(t, func(*sqlite.Store) service.Options { return service.Options{Now: clock} })
	svc, admin := w.Svc, w.Admin
	if _, err := svc.CreateAccount(ctx, admin(), gatehouse.AccountCreate{Name: "ci", Capabilities: []gatehouse.Capability{gatehouse.CapAPIKey}}); err != nil {
		t.Fatal(err)
	}
	var toks []*modelToken
	pick := func(ok func(*modelToken) bool) *modelToken {
		var c []*modelToken
		for _, m := range toks {
			if ok(m) {
				c = append(c, m)
			}
		}
		if len(c) == 0 {
			return nil
		}
		return c[rng.IntN(len(c))]
	}
	var trace []string
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("seed %d, after %v: %s", seed, trace, fmt.Sprintf(format, args...))
	}
	for range steps {
		switch op := rng.IntN(10); {
		case op == 0 || len(toks) == 0:
			n, err := svc.CreateToken(ctx, admin(), "ci", gatehouse.TokenRequest{Name: "t"})
			if err != nil {
				fail("mint: %v", err)
			}
			toks = append(toks, &modelToken{text: n.Token, id: n.ID, family: n.ID, stored: true})
			trace = append(trace, "mint")
		case op <= 2:
			m := pick(func(m *modelToken) bool { return m.stored && !m.deleted })
			if m == nil {
				continue
			}
			grace := int64(rng.IntN(2) * 30)
			n, err := svc.RotateToken(ctx, admin(), "ci", m.id, gatehouse.RotateRequest{GraceSeconds: grace})
			if m.rotated {
				if !gatehouse.IsCode(err, gatehouse.ECONFLICT) {
					fail("rotating a rotated token: %v, want a conflict", err)
				}
				continue
			}
			if err != nil {
				fail("rotate: %v", err)
			}
			m.rotated = true
			if grace > 0 {
				m.graceEnd = clock().Add(time.Duration(grace) * time.Second)
			} else {
				m.stored = false
			}
			toks = append(toks, &modelToken{text: n.Token, id: n.ID, family: m.family, stored: true})
			trace = append(trace, fmt.Sprintf("rotate(grace %d)", grace))
		case op == 3:
			m := pick(func(m *modelToken) bool { return m.stored && !m.deleted })
			if m == nil {
				continue
			}
			if err := svc.DeleteToken(ctx, admin(), "ci", m.id); err != nil {
				fail("revoke: %v", err)
			}
			m.stored, m.deleted = false, true
			trace = append(trace, "revoke")
		case op == 4:
			d := time.Duration(rng.IntN(46)) * time.Second
			mu.Lock()
			now = now.Add(d)
			mu.Unlock()
			trace = append(trace, "wait "+d.String())
		case op == 5:
			if _, err := svc.Reap(ctx); err != nil {
				fail("reap: %v", err)
			}
			for _, m := range toks {
				if m.stored && m.rotated && !m.graceEnd.IsZero() && !clock().Before(m.graceEnd) {
					m.stored = false
				}
			}
			trace = append(trace, "reap")
		default:
			m := toks[rng.IntN(len(toks))]
			want := m.works(clock())
			_, err := svc.Authenticate(ctx, m.text)
			trace = append(trace, fmt.Sprintf("present(rotated %v, stored %v, deleted %v)", m.rotated, m.stored, m.deleted))
			if (err == nil) != want {
				fail("token works = %v, want %v (%v)", err == nil, want, err)
			}
			if !want && m.rotated && !clock().Before(m.graceEnd) {
				// Reuse, once its grace is over (gone early, within its
				// grace, it is only revoked): the family dies, as long
				// as the store still knew it was rotated away (it
				// forgets once the family has no token left).
				for _, o := range toks {
					if o.family == m.family && o.stored {
						o.stored, o.deleted = false, true
					}
				}
			}
		}
		// The store holds exactly what the model says.
		list, err := svc.ListTokens(ctx, admin(), "ci")
		if err != nil {
			fail("list: %v", err)
		}
		var got, want []string
		for _, k := range list {
			got = append(got, k.ID)
		}
		for _, m := range toks {
			if m.stored {
				want = append(want, m.id)
			}
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			fail("store holds %v, the model %v", got, want)
		}
	}
}
