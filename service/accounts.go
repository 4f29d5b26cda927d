package service

import (
	"context"
	"crypto/subtle"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/policy"
)

var accountName = regexp.MustCompile(`^[a-z0-9]([-._a-z0-9]{0,61}[a-z0-9])?$`)

// systemActors are the audit trail's names for the server's own actors
// that an account name could spell. No account, local or SSO, may take
// one: an account reads the events its name made (ListEvents), and these
// name every account's expired tokens, refused exchanges, restores.
var systemActors = map[string]bool{
	"reaper": true, "anonymous": true, "restore": true, "reset-admin-password": true, "sso": true,
}

// Bootstrap creates the admin account on first start. It returns the
// password it generated, or "" when the account already existed or
// password was given.
func (s *Service) Bootstrap(ctx context.Context, password string) (generated string, err error) {
	if s.accounts.get(gatehouse.AdminAccount) != nil {
		return "", nil
	}
	if password == "" {
		password, err = randomPassword(s.rand)
		if err != nil {
			return "", err
		}
		generated = password
	}
	hash, err := s.hashPassword(password)
	if err != nil {
		return "", err
	}
	a := gatehouse.Account{
		Name:         gatehouse.AdminAccount,
		Enabled:      true,
		Capabilities: []gatehouse.Capability{gatehouse.CapLogin, gatehouse.CapAPIKey},
		Groups:       []string{},
		CreatedAt:    s.now().UTC(),
		PasswordHash: hash,
		Source:       gatehouse.SourceLocal,
	}
	err = s.write(ctx, nil, func(tx gatehouse.Tx, c *change) error {
		if err := tx.CreateAccount(ctx, a); err != nil {
			return err
		}
		c.putAccount(a)
		return tx.AppendEvents(ctx, []gatehouse.Event{s.event(nil, gatehouse.EventAccountChanged, "accounts", "create", a.Name, "bootstrap")})
	})
	if gatehouse.IsCode(err, gatehouse.ECONFLICT) {
		return "", nil // another replica won the race
	}
	if err != nil {
		return "", err
	}
	return generated, nil
}

// ListAccounts returns the accounts the caller may get, by name, each
// with its API tokens as GetAccount shows them.
func (s *Service) ListAccounts(ctx context.Context, p *Principal) ([]gatehouse.Account, error) {
	var (
		out    []gatehouse.Account
		tokens map[string][]gatehouse.Token // API tokens by account
	)
	err := s.store.View(ctx, func(tx gatehouse.Tx) error {
		all, err := tx.ListAccounts(ctx)
		if err != nil {
			return err
		}
		p.filtered("accounts")
		out = []gatehouse.Account{}
		for _, a := range all {
			if a.Name == p.account || s.Can(p, "accounts", "get", a.Name) {
				out = append(out, a)
			}
		}
		if len(out) == 0 {
			return nil
		}
		// Each listed account with its API tokens, as GetAccount shows
		// them (the same permission shows both): one query for all.
		toks, err := tx.ListTokens(ctx, gatehouse.TokenFilter{Kind: gatehouse.KindAPI})
		if err != nil {
			return err
		}
		tokens = make(map[string][]gatehouse.Token, len(out))
		for _, t := range toks {
			tokens[t.Account] = append(tokens[t.Account], t)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	for i := range out {
		out[i] = publicAccount(out[i], tokens[out[i].Name])
	}
	return out, nil
}

// GetAccount returns an account with its tokens. Callers see their own
// account; others need accounts, get, <name>.
func (s *Service) GetAccount(ctx context.Context, p *Principal, name string) (gatehouse.Account, error) {
	if name != p.account {
		if err := s.authorize(p, "accounts", "get", name); err != nil {
			return gatehouse.Account{}, err
		}
	} else {
		p.self("accounts", "get", name)
	}
	var (
		a      gatehouse.Account
		tokens []gatehouse.Token
	)
	err := s.store.View(ctx, func(tx gatehouse.Tx) error {
		var err error
		if a, err = tx.GetAccount(ctx, name); err != nil {
			return err
		}
		tokens, err = tx.ListTokens(ctx, gatehouse.TokenFilter{Account: name, Kind: gatehouse.KindAPI})
		return err
	})
	if err != nil {
		return gatehouse.Account{}, err
	}
	return publicAccount(a, tokens), nil
}

// CreateAccount creates a local user (login) or service account (apiKey).
func (s *Service) CreateAccount(ctx context.Context, p *Principal, req gatehouse.AccountCreate) (gatehouse.Account, error) {
	if !accountName.MatchString(req.Name) {
		return gatehouse.Account{}, gatehouse.Errorf(gatehouse.EINVALID, "account name must be 1-63 lowercase letters, digits, '-', '_' or '.', starting and ending with a letter or digit")
	}
	if systemActors[req.Name] {
		return gatehouse.Account{}, gatehouse.Errorf(gatehouse.EINVALID, "account name %q is reserved: the audit trail names the server's own actions with it", req.Name)
	}
	if err := s.authorize(p, "accounts", "create", req.Name); err != nil {
		return gatehouse.Account{}, err
	}
	caps, err := checkCapabilities(req.Capabilities)
	if err != nil {
		return gatehouse.Account{}, err
	}
	groups, err := checkGroups(req.Groups)
	if err != nil {
		return gatehouse.Account{}, err
	}
	// An account is created into whatever the policy already binds to its
	// name (p lines, g lines, project roles' groups): creating it is then a
	// grant too.
	if len(groups) > 0 || s.engine.Load().Binds(req.Name) {
		if err := s.authorizeGrant(p); err != nil {
			return gatehouse.Account{}, err
		}
	}
	a := gatehouse.Account{Name: req.Name, Enabled: true, Capabilities: caps, Groups: groups, CreatedAt: s.now().UTC(), Source: gatehouse.SourceLocal}
	if req.Password != "" {
		if a.PasswordHash, err = s.hashPassword(req.Password); err != nil {
			return gatehouse.Account{}, err
		}
	} else if a.Has(gatehouse.CapLogin) {
		return gatehouse.Account{}, gatehouse.Errorf(gatehouse.EINVALID, "an account with the login capability needs a password")
	}
	err = s.write(ctx, p, func(tx gatehouse.Tx, c *change) error {
		// Again under the write lock, which policy changes also take: a
		// policy that began to name this account since the check above
		// must not slip through.
		if s.engineFor(p).Binds(a.Name) {
			if err := s.authorizeGrant(p); err != nil {
				return err
			}
		}
		// SSO accounts whose provider groups include the new name lose
		// that group in this write (see stripGroup).
		events, err := s.stripGroup(ctx, tx, c, a.Name)
		if err != nil {
			return err
		}
		if err := tx.CreateAccount(ctx, a); err != nil {
			return err
		}
		c.putAccount(a)
		return tx.AppendEvents(ctx, append(events, s.event(p, gatehouse.EventAccountChanged, "accounts", "create", a.Name, "")))
	})
	if gatehouse.IsCode(err, gatehouse.ECONFLICT) {
		return gatehouse.Account{}, gatehouse.Errorf(gatehouse.ECONFLICT, "account %q already exists", a.Name)
	}
	if err != nil {
		return gatehouse.Account{}, err
	}
	return publicAccount(a, nil), nil
}

// UpdateAccount changes enabled, capabilities or groups. The change
// reaches every token of the account before it returns. Disabling an
// account revokes its tokens, so that enabling it again does not bring
// them back. Changing groups is a grant: it also needs settings, update,
// rbac (see authorizeGrant).
func (s *Service) UpdateAccount(ctx context.Context, p *Principal, name string, patch gatehouse.AccountPatch) (gatehouse.Account, error) {
	if err := s.authorize(p, "accounts", "update", name); err != nil {
		return gatehouse.Account{}, err
	}
	var caps []gatehouse.Capability
	var groups []string
	var tokens []gatehouse.Token
	var err error
	if patch.Capabilities != nil {
		if caps, err = checkCapabilities(*patch.Capabilities); err != nil {
			return gatehouse.Account{}, err
		}
	}
	if patch.Groups != nil {
		if groups, err = checkGroups(*patch.Groups); err != nil {
			return gatehouse.Account{}, err
		}
	}
	var a gatehouse.Account
	err = s.write(ctx, p, func(tx gatehouse.Tx, c *change) error {
		var err error
		if a, err = tx.GetAccount(ctx, name); err != nil {
			return err
		}
		before := a
		if patch.Enabled != nil {
			a.Enabled = *patch.Enabled
			// An administrator's word on enabling outlasts the
			// provider's refusal: a login no longer enables it again.
			a.SSO.Refused = false
		}
		if patch.Capabilities != nil {
			a.Capabilities = caps
		}
		if patch.Groups != nil {
			if a.IsSSO() && !slices.Equal(a.Groups, groups) {
				return gatehouse.Errorf(gatehouse.EPRECONDITION, "the identity provider owns the groups of the SSO account %q; bind its groups to roles with g lines instead", a.Name)
			}
			if !slices.Equal(a.Groups, groups) {
				if err := s.authorizeGrant(p); err != nil {
					return err
				}
			}
			a.Groups = groups
		}
		if a.Name == gatehouse.AdminAccount && (!a.Enabled || !a.Has(gatehouse.CapLogin)) {
			return gatehouse.Errorf(gatehouse.EPRECONDITION, "the admin account cannot be disabled or lose the login capability")
		}
		if err := tx.UpdateAccount(ctx, a); err != nil {
			return err
		}
		c.putAccount(a)
		events := []gatehouse.Event{s.event(p, gatehouse.EventAccountChanged, "accounts", "update", a.Name, "")}
		// What is cut off stays cut off: tokens that stop working now are
		// revoked, so that enabling the account or giving the capability
		// back does not bring them back.
		for _, cut := range cutOff(before, a) {
			gone, err := s.revokeTx(ctx, tx, c, p, cut.filter, gatehouse.EventTokenRevoked, cut.why)
			if err != nil {
				return err
			}
			events = append(events, gone...)
		}
		// The answer shows the account's API tokens as GetAccount does,
		// as they are after the change.
		if tokens, err = tx.ListTokens(ctx, gatehouse.TokenFilter{Account: a.Name, Kind: gatehouse.KindAPI}); err != nil {
			return err
		}
		return tx.AppendEvents(ctx, events)
	})
	if err != nil {
		return gatehouse.Account{}, err
	}
	return publicAccount(a, tokens), nil
}

// AccountRights is what a caller may do with an account, for a page that
// offers the actions. The rules are those of the actions themselves.
type AccountRights struct {
	Self         bool     // the account is the caller's own
	MintTokens   bool     // CreateToken would be allowed (body aside)
	RevokeTokens bool     // DeleteToken and RevokeAll would be allowed
	Update       bool     // UpdateAccount would be allowed
	Roles        []string // the roles the account holds now
}

// RightsOn answers AccountRights for a. It is a question, not a request:
// it leaves p's recorded decision alone.
func (s *Service) RightsOn(ctx context.Context, p *Principal, a gatehouse.Account) AccountRights {
	if p == nil {
		return AccountRights{}
	}
	saved := p.decision
	defer func() { p.decision = saved }()
	r := AccountRights{
		Self:         a.Name == p.account && p.kind != gatehouse.KindProject,
		MintTokens:   s.MayMint(ctx, p, MintOwner{Account: a.Name}),
		RevokeTokens: s.authorizeTokens(p, a.Name, "update") == nil,
		Update:       a.Name != gatehouse.AdminAccount && s.Can(p, "accounts", "update", a.Name),
	}
	if e := s.engine.Load(); e != nil {
		r.Roles = e.Roles(a.Name, a.Groups)
	}
	return r
}

// revocation is a set of tokens an account change cuts off.
type revocation struct {
	filter gatehouse.TokenFilter
	why    string
}

// cutOff lists the tokens that stop working when an account goes from
// before to after: all of them when it is disabled, its sessions when it
// loses login, its API tokens when it loses apiKey.
func cutOff(before, after gatehouse.Account) []revocation {
	name := after.Name
	if before.Enabled && !after.Enabled {
		return []revocation{{gatehouse.TokenFilter{Account: name}, "account disabled"}}
	}
	var out []revocation
	if before.Has(gatehouse.CapLogin) && !after.Has(gatehouse.CapLogin) {
		out = append(out, revocation{gatehouse.TokenFilter{Account: name, Kind: gatehouse.KindSession}, "login capability removed"})
	}
	if before.Has(gatehouse.CapAPIKey) && !after.Has(gatehouse.CapAPIKey) {
		out = append(out, revocation{gatehouse.TokenFilter{Account: name, Kind: gatehouse.KindAPI}, "apiKey capability removed"})
	}
	return out
}

// authorizeGrant: setting an account's groups hands it whatever the
// policy binds to those groups, and creating an account whose name the
// policy already names hands it what the policy gives that name, so both
// are RBAC changes and need settings, update, rbac on top of the account
// permission. The rule in
// general: no request hands anyone a permission unless the caller may
// change the policy that grants it.
func (s *Service) authorizeGrant(p *Principal) error {
	if err := s.authorize(p, "settings", "update", "rbac"); err != nil {
		return gatehouse.Errorf(gatehouse.EFORBIDDEN, "permission denied: this grants permissions (the account's groups, or policy lines that already name it), so it needs settings, update, rbac")
	}
	return nil
}

// DeleteAccount deletes an account and every token it holds.
func (s *Service) DeleteAccount(ctx context.Context, p *Principal, name string) error {
	if err := s.authorize(p, "accounts", "delete", name); err != nil {
		return err
	}
	if name == gatehouse.AdminAccount {
		return gatehouse.Errorf(gatehouse.EPRECONDITION, "the admin account cannot be deleted")
	}
	return s.write(ctx, p, func(tx gatehouse.Tx, c *change) error {
		if err := tx.DeleteAccount(ctx, name); err != nil {
			return err
		}
		c.deleteAccount(name)
		events := []gatehouse.Event{s.event(p, gatehouse.EventAccountChanged, "accounts", "delete", name, "")}
		gone, err := s.revokeTx(ctx, tx, c, p, gatehouse.TokenFilter{Account: name}, gatehouse.EventTokenRevoked, "account deleted")
		if err != nil {
			return err
		}
		events = append(events, gone...)
		dropped, err := s.dropTrustPoliciesTx(ctx, tx, c, p, func(tp gatehouse.TrustPolicy) bool { return tp.Account == name },
			fmt.Sprintf("its account %q was deleted", name))
		if err != nil {
			return err
		}
		return tx.AppendEvents(ctx, append(events, dropped...))
	})
}

// UpdatePassword changes a password. The caller must give its current
// password (its own for its account; an admin changing another account's
// password gives the admin's own), checked under the login throttle for
// the caller's account and remoteAddr (verifyCurrentPassword). Every
// session of the account except the caller's is revoked.
func (s *Service) UpdatePassword(ctx context.Context, p *Principal, req gatehouse.PasswordChange, remoteAddr string) error {
	name := req.Name
	if name == "" {
		name = p.account
	}
	if name == "" {
		return gatehouse.Errorf(gatehouse.EFORBIDDEN, "project tokens have no password")
	}
	if name != p.account {
		if err := s.authorize(p, "accounts", "update", name); err != nil {
			return err
		}
	} else {
		p.self("accounts", "update", name)
	}
	if err := checkPassword(req.NewPassword); err != nil {
		return err
	}
	verified, err := s.verifyCurrentPassword(ctx, p.account, req.CurrentPassword, remoteAddr)
	if err != nil {
		return err
	}
	hash, err := s.hashPassword(req.NewPassword)
	if err != nil {
		return err
	}
	var a gatehouse.Account
	err = s.write(ctx, p, func(tx gatehouse.Tx, c *change) error {
		// The password checked is this replica's copy, and bcrypt ran
		// outside the transaction: it must still be the caller's, or a
		// password changed meanwhile (through another replica) would
		// still pass for the current one.
		caller, err := tx.GetAccount(ctx, p.account)
		if gatehouse.IsCode(err, gatehouse.ENOTFOUND) || (err == nil && subtle.ConstantTimeCompare(caller.PasswordHash, verified) != 1) {
			return errWrongPassword
		}
		if err != nil {
			return err
		}
		if a = caller; name != p.account {
			if a, err = tx.GetAccount(ctx, name); err != nil {
				return err
			}
		}
		if a.IsSSO() {
			return gatehouse.Errorf(gatehouse.EPRECONDITION, "the SSO account %q has no password: it logs in through the identity provider", name)
		}
		a.PasswordHash = hash
		if err := tx.UpdateAccount(ctx, a); err != nil {
			return err
		}
		c.putAccount(a)
		events := []gatehouse.Event{s.event(p, gatehouse.EventAccountChanged, "accounts", "update", name, "password changed")}
		gone, err := s.revokeTx(ctx, tx, c, p, gatehouse.TokenFilter{Account: name, Kind: gatehouse.KindSession, ExceptID: p.tokenID}, gatehouse.EventTokenRevoked, "password changed")
		if err != nil {
			return err
		}
		return tx.AppendEvents(ctx, append(events, gone...))
	})
	return err
}

// verifyCurrentPassword checks account's current password as Login checks
// a password, under the same throttle: the same failure budgets (the
// account's, shared with its logins, and the address's), reserved before
// the check runs, and the same cap on concurrent bcrypt checks. A session
// or API token is not the password: without this, whoever holds one could
// guess its owner's password at full speed and, once right, change it.
// A throttled attempt is refused before any check, right password or
// not; a right one clears the account's failures, as a login does.
//
// It returns the hash it verified the password against, which the
// caller's write checks is still the stored one.
func (s *Service) verifyCurrentPassword(ctx context.Context, account, password, remoteAddr string) ([]byte, error) {
	id, err := s.attemptID()
	if err != nil {
		return nil, err
	}
	wait, err := s.logins.reserve(ctx, s.store, id, account, remoteAddr, s.now())
	if err != nil {
		return nil, err // the budget cannot be read: no check goes uncounted
	}
	if wait > 0 {
		return nil, &gatehouse.Error{Code: gatehouse.ETHROTTLED, RetryAfter: wait,
			Message: "too many wrong passwords for this account or from this address; try again in " + seconds(wait)}
	}
	if !s.logins.acquire(ctx, loginWait) {
		s.settleLogin(ctx, id, account, loginNotRun)
		return nil, &gatehouse.Error{Code: gatehouse.ETHROTTLED, RetryAfter: time.Second, Message: "too many password checks in progress; try again in 1 second"}
	}
	a := s.accounts.get(account)
	hash := s.dummyHash()
	if a != nil && len(a.PasswordHash) > 0 {
		hash = a.PasswordHash
	}
	err = bcrypt.CompareHashAndPassword(hash, []byte(password))
	s.logins.release()
	if err != nil || a == nil || len(a.PasswordHash) == 0 {
		s.settleLogin(ctx, id, account, loginFailed)
		return nil, errWrongPassword
	}
	s.settleLogin(ctx, id, account, loginSucceeded)
	return a.PasswordHash, nil
}

// errWrongPassword refuses a current password that is not the account's.
var errWrongPassword = gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "current password is wrong")

// publicAccount strips what must not leave the server and attaches tokens.
func publicAccount(a gatehouse.Account, tokens []gatehouse.Token) gatehouse.Account {
	a.PasswordHash = nil
	a.SSO = gatehouse.SSOLink{}
	if a.Source == "" {
		a.Source = gatehouse.SourceLocal
	}
	if a.Capabilities == nil {
		a.Capabilities = []gatehouse.Capability{}
	}
	if a.Groups == nil {
		a.Groups = []string{}
	}
	a.Tokens = publicTokens(tokens)
	return a
}

func checkCapabilities(caps []gatehouse.Capability) ([]gatehouse.Capability, error) {
	out := []gatehouse.Capability{}
	for _, c := range caps {
		if c != gatehouse.CapLogin && c != gatehouse.CapAPIKey {
			return nil, gatehouse.Errorf(gatehouse.EINVALID, "unknown capability %q (want login or apiKey)", c)
		}
		if !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out, nil
}

func checkGroups(groups []string) ([]string, error) {
	out := []string{}
	for _, g := range groups {
		if err := checkGroupName(g); err != nil {
			return nil, err
		}
		if !slices.Contains(out, g) {
			out = append(out, g)
		}
	}
	return out, nil
}

// checkGroupName: 1-253 printable characters, no surrounding space, and
// not a role's name (role:..., proj:...), which would make the group's
// members holders of that role.
func checkGroupName(g string) error {
	if g == "" || len(g) > 253 || strings.TrimSpace(g) != g || !utf8.ValidString(g) || strings.ContainsFunc(g, unicode.IsControl) {
		return gatehouse.Errorf(gatehouse.EINVALID, "group names must be 1-253 printable characters without surrounding spaces")
	}
	if policy.ReservedGroup(g) {
		return gatehouse.Errorf(gatehouse.EINVALID, "group %q: group names may not start with role: or proj: (those name roles; bind a group to a role with a g line instead)", g)
	}
	return nil
}

// hashPassword checks a new password against the rules and hashes it as
// every password is stored: bcrypt at the service's cost.
func (s *Service) hashPassword(pw string) ([]byte, error) {
	if err := checkPassword(pw); err != nil {
		return nil, err
	}
	h, err := bcrypt.GenerateFromPassword([]byte(pw), s.bcryptCost)
	if err != nil {
		return nil, gatehouse.Internal(err)
	}
	return h, nil
}

// checkPassword enforces bcrypt's limits: 8 to 72 bytes.
func checkPassword(pw string) error {
	if len(pw) < 8 || len(pw) > 72 {
		return gatehouse.Errorf(gatehouse.EINVALID, "password must be 8 to 72 bytes long")
	}
	return nil
}
