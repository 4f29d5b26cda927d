package service

import (
	"context"
	"errors"
	"slices"
	"time"

	"golang.org/x/oauth2"

	"github.com/gatehouse/gatehouse"
)

// Background group refresh. Every account whose login gave a refresh
// token has its groups asked of the provider again once they are
// groupsRefreshInterval old:
//
//   - the provider answers: the groups (and the rotated refresh token)
//     are stored, and groupsRefreshedAt moves on;
//   - the provider refuses (invalid_grant: the user was removed, disabled
//     or signed out everywhere): the account is disabled, which revokes
//     every token and session it holds, audited;
//   - the provider cannot be reached: nothing changes. The last groups
//     stay in force until groupsMaxAge after groupsRefreshedAt; then the
//     account's tokens are refused (auth.go) until a refresh or a login
//     succeeds.
//
// With several replicas one of them at a time refreshes (gatehouse.Locker),
// and it reads each account from the store, not from memory: providers
// rotate refresh tokens, so two replicas refreshing with the same one, or
// one with a token another has already rotated, would look like reuse and
// may get the whole grant revoked.

// ssoRefreshLock names the refresher's job lock.
const ssoRefreshLock = "sso-refresh"

// RunSSORefresh refreshes groups until ctx ends. It wakes every tenth of
// the refresh interval (between 1s and 1m), so an account's groups are
// refreshed at most that much later than the interval says.
func (s *Service) RunSSORefresh(ctx context.Context) {
	if s.sso == nil {
		return
	}
	tick := time.NewTicker(min(max(s.sso.every/10, time.Second), time.Minute))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if _, err := s.RefreshSSOGroups(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("SSO group refresh", "err", err)
		}
	}
}

// RefreshSSOGroups refreshes, once, the groups of every SSO account that
// is due, and returns how many the provider answered for.
func (s *Service) RefreshSSOGroups(ctx context.Context) (int, error) {
	if s.sso == nil {
		return 0, nil
	}
	if l, ok := s.store.(gatehouse.Locker); ok {
		release, held, err := l.TryLock(ctx, ssoRefreshLock)
		if err != nil {
			return 0, err
		}
		if !held {
			return 0, nil // another replica refreshes
		}
		defer release()
	}
	now := s.now()
	var due []gatehouse.Account
	err := s.store.View(ctx, func(tx gatehouse.Tx) error {
		all, err := tx.ListAccounts(ctx)
		if err != nil {
			return err
		}
		due = due[:0]
		for _, a := range all {
			if a.IsSSO() && a.Enabled && a.SSO.RefreshToken != nil && now.Sub(a.GroupsRefreshedAt) >= s.sso.every {
				due = append(due, a)
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, a := range due {
		if ctx.Err() != nil {
			return n, ctx.Err()
		}
		ok, err := s.refreshAccount(ctx, a)
		if err != nil {
			s.log.Warn("SSO group refresh: keeping the last groups", "account", a.Name, "err", err)
			continue
		}
		if ok {
			n++
		}
	}
	return n, nil
}

// errRefreshRefused is the provider's refusal of a refresh token.
var errRefreshRefused = errors.New("the identity provider refused the refresh token (invalid_grant)")

// refreshAccount refreshes one account's groups. It returns false, nil
// when the provider refused (and the account was disabled) or the account
// changed meanwhile; an error when the provider could not be asked.
func (s *Service) refreshAccount(ctx context.Context, a gatehouse.Account) (bool, error) {
	p, verifier, cfg, err := s.sso.discover(ctx)
	if err != nil {
		return false, err
	}
	rt, err := s.sso.seal.openRefresh(a.Name, a.SSO.Issuer, a.SSO.RefreshToken)
	if err != nil {
		// Sealed under another client secret (it was rotated): this
		// account's groups refresh again at its next login.
		return false, errors.New("the stored refresh token does not open with the configured client secret; the groups refresh again at the next login")
	}
	pctx := s.sso.ctx(ctx)
	// An empty access token makes the source refresh at once.
	tok, err := cfg.TokenSource(pctx, &oauth2.Token{RefreshToken: rt}).Token()
	// The refusal is read from x/oauth2's error itself; only
	// providerFailure's account of it goes on to the log, since its text
	// quotes the provider's answer, which may quote the refresh token.
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.ErrorCode == "invalid_grant" {
		return false, s.refusedRefresh(ctx, a)
	}
	if err != nil {
		return false, providerFailure("refreshing at the token endpoint", err)
	}
	var claims map[string]any
	if raw, _ := tok.Extra("id_token").(string); raw != "" {
		idt, err := verifier.Verify(pctx, raw)
		if err != nil {
			return false, err
		}
		if idt.Subject != a.SSO.Subject {
			return false, errors.New("the refreshed ID token names another subject")
		}
		if claims, err = s.sso.claims(pctx, p, idt, tok, false); err != nil {
			return false, err
		}
	} else {
		ui, err := p.UserInfo(pctx, oauth2.StaticTokenSource(tok))
		if err != nil {
			return false, providerFailure("OIDC userinfo", err)
		}
		if ui.Subject != a.SSO.Subject {
			return false, errors.New("the userinfo answer names another subject")
		}
		if err := ui.Claims(&claims); err != nil {
			return false, err
		}
	}
	// Only the groups: the account is bound to the subject, whatever
	// username the provider gives it now.
	if sub, _ := claims["sub"].(string); sub != "" && sub != a.SSO.Subject {
		return false, errors.New("the refreshed claims name another subject")
	}
	fromIdP, _ := groupsFromClaims(claims, s.sso.o.GroupsClaim)
	sealed := a.SSO.RefreshToken
	if tok.RefreshToken != "" && tok.RefreshToken != rt {
		if sealed, err = s.sso.seal.sealRefresh(a.Name, a.SSO.Issuer, tok.RefreshToken); err != nil {
			return false, gatehouse.Internal(err)
		}
	}
	now := s.now().UTC()
	changed := true
	err = s.write(ctx, nil, func(tx gatehouse.Tx, c *change) error {
		cur, err := tx.GetAccount(ctx, a.Name)
		if err != nil {
			return err
		}
		if !sameLink(cur, a) {
			changed = false // a login (or an administrator) got there first
			return nil
		}
		groups, err := s.usableGroups(ctx, tx, cur.Name, fromIdP)
		if err != nil {
			return err
		}
		var events []gatehouse.Event
		if !slices.Equal(cur.Groups, groups) {
			events = append(events, s.groupsEvent(cur.Name, cur.Groups, groups, "refresh"))
		}
		cur.Groups = groups
		cur.GroupsRefreshedAt = now
		cur.SSO.RefreshToken = sealed
		if err := tx.UpdateAccount(ctx, cur); err != nil {
			return err
		}
		c.putAccount(cur)
		return tx.AppendEvents(ctx, events)
	})
	if err != nil {
		return false, err
	}
	return changed, nil
}

// sameLink reports whether the account is still the one a refresh began
// with: enabled, same subject, same sealed refresh token.
func sameLink(cur, was gatehouse.Account) bool {
	return cur.IsSSO() && cur.Enabled && cur.SSO.Subject == was.SSO.Subject &&
		cur.SSO.Issuer == was.SSO.Issuer && slices.Equal(cur.SSO.RefreshToken, was.SSO.RefreshToken)
}

// refusedRefresh disables an account whose refresh the provider refused.
// Disabling revokes every token and session of the account (cutOff), so
// they stop working at once and stay revoked. A later successful login
// enables the account again (SSOLink.Refused).
func (s *Service) refusedRefresh(ctx context.Context, a gatehouse.Account) error {
	err := s.write(ctx, nil, func(tx gatehouse.Tx, c *change) error {
		cur, err := tx.GetAccount(ctx, a.Name)
		if err != nil {
			return err
		}
		if !sameLink(cur, a) {
			return nil // a login replaced the refused token meanwhile
		}
		before := cur
		cur.Enabled = false
		cur.SSO.Refused = true
		cur.SSO.RefreshToken = nil
		if err := tx.UpdateAccount(ctx, cur); err != nil {
			return err
		}
		c.putAccount(cur)
		ev := s.event(nil, gatehouse.EventSSORefreshRefused, "accounts", "update", cur.Name, "the identity provider refused the refresh (invalid_grant): account disabled, its tokens revoked")
		ev.Actor = "sso"
		events := []gatehouse.Event{ev}
		for _, cut := range cutOff(before, cur) {
			gone, err := s.revokeTx(ctx, tx, c, nil, cut.filter, gatehouse.EventTokenRevoked, "identity provider refused the refresh")
			if err != nil {
				return err
			}
			events = append(events, gone...)
		}
		return tx.AppendEvents(ctx, events)
	})
	if err != nil {
		return err
	}
	s.log.Warn("SSO: the identity provider refused a refresh; account disabled and its tokens revoked", "account", a.Name)
	return nil
}
