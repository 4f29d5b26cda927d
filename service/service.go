package service

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/policy"
	"github.com/gatehouse/gatehouse/token"
)

// Options configures a Service. Zero values take the documented defaults.
type Options struct {
	Store    gatehouse.Store
	Instance string           // token prefix; default "gatehouse"
	Now      func() time.Time // default time.Now
	Rand     io.Reader        // default crypto/rand.Reader
	Logger   *slog.Logger     // default discards
	Metrics  *Metrics         // default: metrics registered nowhere

	DefaultLifetime  time.Duration // default 12h
	MaxLifetime      time.Duration // default 720h
	AllowNonExpiring bool
	// IdleTimeout is the idle timeout of API and project tokens whose
	// mint request gives none (0: none).
	IdleTimeout time.Duration

	// RBAC is the policy stored when the store holds none yet (first
	// start), for the fields that FileRBAC does not set.
	RBAC gatehouse.RBAC
	// FileRBAC is what the configuration file sets of the RBAC settings:
	// applied at every start, the first included, and not editable
	// through the API while the file sets it (rbac_file.go).
	FileRBAC       FileRBAC
	DisableBuiltin bool
	// Replica names this server in the audit record of a change that its
	// configuration file made, so that another replica can tell that the
	// settings in force came from a file other than its own. It should
	// stay the same across restarts of one server and differ between
	// replicas.
	Replica string

	LoginMaxFailures   int           // default 5
	LoginWindow        time.Duration // default 5m
	LoginMaxConcurrent int           // concurrent bcrypt checks; default 4
	BcryptCost         int           // default 12; at least 10

	AuditRetention time.Duration // default 90 days
	// AuditQueue is the capacity of the request-event queue; default 32768.
	AuditQueue int
	// AuditDisabled turns off request events (benchmarks); lifecycle
	// events are always written.
	AuditDisabled bool

	// Follow makes this server a replica that follows the store's change
	// feed (see follow.go). It is on whenever the store notifies
	// (gatehouse.Notifier, PostgreSQL); tests turn it on for others.
	Follow bool
	// StalenessBound is how long a replica may go without confirming it
	// is current before it refuses tokens; default 1s.
	StalenessBound time.Duration
	// JWKSTimeout bounds one fetch of a trust policy's JWKS; default 5s.
	JWKSTimeout time.Duration

	// SSO turns on login through an OpenID Connect provider (sso.go).
	// Without it, SSO accounts made earlier are still refused once their
	// groups are older than DefaultGroupsMaxAge.
	SSO *SSOOptions

	// Notifications are the webhooks and expiry warnings (notify.go).
	Notifications NotifyOptions
}

// Service implements Gatehouse's rules over a Store.
type Service struct {
	store    gatehouse.Store
	instance string
	now      func() time.Time
	rand     io.Reader
	log      *slog.Logger
	metrics  *Metrics

	defaultLifetime  time.Duration
	maxLifetime      time.Duration
	allowNonExpiring bool
	disableBuiltin   bool
	fileRBAC         FileRBAC
	replica          string
	bcryptCost       int
	auditRetention   time.Duration

	tokens      *tokenCache
	rotations   *rotationCache
	idleTimeout time.Duration
	leakLimit   addressLimiter
	verifyCount atomic.Uint64
	accounts    accountCache
	apps        *appCache
	engine      atomic.Pointer[policy.Engine]
	source      policySource // what engine was compiled from; writeMu

	// writeMu serializes writes from their transaction to the apply that
	// follows its commit (see write).
	writeMu sync.Mutex

	// backupBusy is set while a backup is taken or handed out (backup.go).
	backupBusy atomic.Bool
	// rbacCheckBusy is set while CheckRBAC compiles a draft.
	rbacCheckBusy atomic.Bool
	// auditVerifyBusy is set while VerifyAudit re-hashes the audit trail
	// (audit_verify.go).
	auditVerifyBusy atomic.Bool

	logins    *loginGuard
	dummyOnce sync.Once
	dummy     []byte
	usage     *usageTracker
	audit     *auditQueue
	ready     readiness // the store monitor's verdict (ready.go)
	follow    follower  // this replica's place in the change feed (follow.go)

	jwks *jwksCache // trust policies' signing keys (jwks.go)

	sso *ssoClient // nil without SSO

	notify *notifier // webhook notifications (notify.go)
	// ssoMaxAge is how long after the provider last confirmed an SSO
	// account's groups its tokens are accepted (the hot path reads it).
	ssoMaxAge int64
}

// New builds a Service and loads its caches from the store.
func New(ctx context.Context, o Options) (*Service, error) {
	if o.Store == nil {
		return nil, fmt.Errorf("service: no store")
	}
	s := &Service{
		store:            o.Store,
		instance:         or(o.Instance, "gatehouse"),
		now:              o.Now,
		rand:             o.Rand,
		log:              o.Logger,
		metrics:          o.Metrics,
		defaultLifetime:  orDur(o.DefaultLifetime, 12*time.Hour),
		maxLifetime:      orDur(o.MaxLifetime, 720*time.Hour),
		allowNonExpiring: o.AllowNonExpiring,
		disableBuiltin:   o.DisableBuiltin,
		fileRBAC:         o.FileRBAC.owning(),
		replica:          o.Replica,
		bcryptCost:       o.BcryptCost,
		auditRetention:   orDur(o.AuditRetention, 90*24*time.Hour),
		tokens:           newTokenCache(),
		rotations:        newRotationCache(),
		idleTimeout:      o.IdleTimeout,
		leakLimit:        addressLimiter{limit: leakReportsPerMinute, max: 100000},
		accounts:         accountCache{m: map[string]*accountSlot{}},
		apps:             newAppCache(),
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.rand == nil {
		s.rand = rand.Reader
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.metrics == nil {
		s.metrics = NewMetrics(nil)
	}
	if s.bcryptCost == 0 {
		s.bcryptCost = 12
	}
	if s.bcryptCost < 10 {
		return nil, fmt.Errorf("service: bcrypt cost %d is below 10", s.bcryptCost)
	}
	if !token.ValidInstance(s.instance) {
		return nil, fmt.Errorf("service: invalid instance name %q", s.instance)
	}
	if sec := int64(s.idleTimeout / time.Second); s.idleTimeout != 0 && (s.idleTimeout%time.Second != 0 || sec < minIdleTimeout || sec > maxIdleTimeout) {
		return nil, fmt.Errorf("service: idle timeout %s is not whole seconds between an hour and a year", s.idleTimeout)
	}
	s.ssoMaxAge = int64(DefaultGroupsMaxAge)
	if o.SSO != nil {
		c, err := newSSOClient(*o.SSO, s.rand)
		if err != nil {
			return nil, err
		}
		s.sso = c
		s.ssoMaxAge = int64(orDur(o.SSO.GroupsMaxAge, DefaultGroupsMaxAge))
	}
	notify, err := newNotifier(o.Notifications)
	if err != nil {
		return nil, err
	}
	s.notify = notify
	s.jwks = newJWKSCache(orDur(o.JWKSTimeout, 5*time.Second), s.now)
	s.logins = newLoginGuard(o.LoginMaxFailures, o.LoginWindow, o.LoginMaxConcurrent)
	s.usage = newUsageTracker()
	s.audit = newAuditQueue(o.AuditQueue, o.AuditDisabled, s.metrics)
	s.metrics.activeTokens(s.tokens.count)
	_, notifies := o.Store.(gatehouse.Notifier)
	s.follow = newFollower(o.Follow || notifies, orDur(o.StalenessBound, time.Second))

	if err := s.fileRBAC.check(); err != nil {
		return nil, err
	}
	// The first start stores o.RBAC without the fields the file sets;
	// applyFileRBAC then writes those as a change made by the file, as
	// it does at every later start.
	if err := s.load(ctx, s.fileRBAC.clear(o.RBAC)); err != nil {
		return nil, err
	}
	if err := s.applyFileRBAC(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// errNoRBAC is load's signal, out of a View, that no RBAC policy is stored.
var errNoRBAC = errors.New("no RBAC policy stored yet")

// load fills the caches from the store and builds the policy engine. On
// first start it stores the configured RBAC policy.
func (s *Service) load(ctx context.Context, initial gatehouse.RBAC) error {
	var (
		accounts  []gatehouse.Account
		projects  []gatehouse.Project
		apps      []gatehouse.Application
		rotations []gatehouse.Rotation
		rbac      gatehouse.RBAC
	)
	// The feed's head is read before the state: whatever commits while the
	// state loads comes after it and is applied again from the feed. So the
	// state is confirmed current as of the moment the head was read, not
	// of the end of the load (see the end).
	began := time.Now()
	head, err := s.store.ChangeHead(ctx)
	if err != nil {
		return fmt.Errorf("load state: %w", err)
	}
	var last *gatehouse.Change
	if s.follow.active {
		if last, err = s.changeAt(ctx, head); err != nil {
			return fmt.Errorf("load state: %w", err)
		}
	}
	// read reads the state in tx. On first start there is no RBAC policy
	// yet: with store set it stores initial, else it reports errNoRBAC.
	read := func(tx gatehouse.Tx, store bool) error {
		var err error
		if accounts, err = tx.ListAccounts(ctx); err != nil {
			return err
		}
		if apps, err = tx.ListApplications(ctx, ""); err != nil {
			return err
		}
		if projects, err = tx.ListProjects(ctx); err != nil {
			return err
		}
		if rotations, err = tx.ListRotations(ctx); err != nil {
			return err
		}
		rbac, err = tx.GetRBAC(ctx)
		if gatehouse.IsCode(err, gatehouse.ENOTFOUND) {
			if !store {
				return errNoRBAC
			}
			rbac = initial
			// Refuse a bad initial policy before storing it.
			if _, err := s.buildEngine(rbac, projects); err != nil {
				return err
			}
			return tx.PutRBAC(ctx, rbac)
		}
		return err
	}
	// A read, except on first start, when the same read runs again in a
	// write transaction that stores the initial policy (unless another
	// replica has stored one meanwhile: then it reads that).
	err = s.store.View(ctx, func(tx gatehouse.Tx) error { return read(tx, false) })
	if errors.Is(err, errNoRBAC) {
		err = s.store.Tx(ctx, func(tx gatehouse.Tx) error { return read(tx, true) })
	}
	if err != nil {
		return fmt.Errorf("load state: %w", err)
	}
	for _, a := range accounts {
		s.accounts.put(a)
	}
	for _, a := range apps {
		s.apps.put(a)
	}
	for _, r := range rotations {
		s.rotations.put(r)
	}
	e, err := s.buildEngine(rbac, projects)
	if err != nil {
		return fmt.Errorf("stored RBAC policy: %w", err)
	}
	s.engine.Store(e)
	if s.source, err = sourceOf(rbac, projects); err != nil {
		return fmt.Errorf("stored RBAC policy: %w", err)
	}

	now := s.now()
	err = s.store.ForEachToken(ctx, func(t gatehouse.Token) error {
		if t.Expired(now) {
			return nil // refused anyway; the reaper removes it
		}
		return s.cacheToken(t)
	})
	if err != nil {
		return fmt.Errorf("load tokens: %w", err)
	}
	s.follow.applied.Store(head)
	s.follow.last = last
	// A revocation committed elsewhere during a load longer than the
	// staleness bound is not applied yet: such a replica starts stale, and
	// refuses tokens until its first reading of the feed (Run).
	s.follow.setConfirmed(began)
	s.follow.stale.Store(s.follow.active && time.Since(began) > s.follow.bound)
	return nil
}

func (s *Service) cacheToken(t gatehouse.Token) error {
	id, err := token.ParseID(t.ID)
	if err != nil {
		return fmt.Errorf("stored token has a bad id: %w", err)
	}
	var owner *accountSlot
	if t.Kind != gatehouse.KindProject {
		owner = s.accounts.slot(t.Account)
	}
	ct, err := newCachedToken(t, owner)
	if err != nil {
		return fmt.Errorf("stored token %s: %w", t.ID, err)
	}
	s.tokens.put(id, ct)
	return nil
}

func (s *Service) uncacheToken(idStr string) {
	if id, err := token.ParseID(idStr); err == nil {
		s.tokens.delete(id)
	}
}

// buildEngine compiles the global policy together with every project
// role's lines and group bindings.
func (s *Service) buildEngine(r gatehouse.RBAC, projects []gatehouse.Project) (*policy.Engine, error) {
	e, err := s.compileEngine(r, projects)
	if err != nil {
		var ge *gatehouse.Error
		if errors.As(err, &ge) {
			return nil, err
		}
		return nil, gatehouse.Errorf(gatehouse.EINVALID, "invalid policy: %v", err)
	}
	return e, nil
}

// compileEngine is buildEngine with the policy engine's own error (a
// policy.ErrorList naming the bad lines), for callers that place the
// lines themselves (the configuration file's policy, rbac_file.go). A
// project that cannot make lines is a *gatehouse.Error.
func (s *Service) compileEngine(r gatehouse.RBAC, projects []gatehouse.Project) (*policy.Engine, error) {
	src, err := sourceOf(r, projects)
	if err != nil {
		return nil, err
	}
	return policy.New(policy.Config{
		CSV:            src.rbac.PolicyCSV,
		DefaultRole:    src.rbac.PolicyDefault,
		MatchMode:      src.rbac.MatchMode,
		DisableBuiltin: s.disableBuiltin,
		Extra:          src.lines,
	})
}

// policySource is what an engine is compiled from: the RBAC settings and
// the projects' lines.
type policySource struct {
	rbac  gatehouse.RBAC // ManagedByConfig cleared
	lines []policy.Line
}

// sourceOf is the policy source of the RBAC settings and projects.
func sourceOf(r gatehouse.RBAC, projects []gatehouse.Project) (policySource, error) {
	r.ManagedByConfig = nil
	src := policySource{rbac: r}
	for _, p := range projects {
		lines, err := projectLines(p)
		if err != nil {
			return policySource{}, err
		}
		src.lines = append(src.lines, lines...)
	}
	return src, nil
}

// equal reports whether a and b compile to the same engine.
func (a policySource) equal(b policySource) bool {
	return a.rbac.PolicyCSV == b.rbac.PolicyCSV && a.rbac.PolicyDefault == b.rbac.PolicyDefault &&
		a.rbac.MatchMode == b.rbac.MatchMode && slices.Equal(a.lines, b.lines)
}

// rebuildEngine builds the engine from the policy inputs as tx sees them.
// write calls it after a change is written but before the transaction
// commits, so a policy that does not compile rolls the change back.
func (s *Service) rebuildEngine(ctx context.Context, tx gatehouse.Tx) (*policy.Engine, policySource, error) {
	src, r, projects, err := readPolicySource(ctx, tx)
	if err != nil {
		return nil, policySource{}, err
	}
	e, err := s.buildEngine(r, projects)
	return e, src, err
}

// readPolicySource reads the policy inputs as tx sees them.
func readPolicySource(ctx context.Context, tx gatehouse.Tx) (policySource, gatehouse.RBAC, []gatehouse.Project, error) {
	r, err := tx.GetRBAC(ctx)
	if err != nil {
		return policySource{}, r, nil, err
	}
	projects, err := tx.ListProjects(ctx)
	if err != nil {
		return policySource{}, r, nil, err
	}
	src, err := sourceOf(r, projects)
	return src, r, projects, err
}

// Engine returns the policy engine in force.
func (s *Service) Engine() *policy.Engine { return s.engine.Load() }

// Instance returns the instance name that prefixes this server's tokens.
func (s *Service) Instance() string { return s.instance }

// MaxLifetime returns the longest token life the server grants.
func (s *Service) MaxLifetime() time.Duration { return s.maxLifetime }

// DefaultLifetime returns the life of a token minted without expiresIn.
func (s *Service) DefaultLifetime() time.Duration { return s.defaultLifetime }

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func orDur(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}
