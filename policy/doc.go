// Package policy decides every permission in Gatehouse (docs/security.md). It
// answers one question — may this subject, with these groups, do this action
// on this resource and object? — and knows nothing of HTTP or storage.
//
// Policies are written in Argo CD's policy.csv language:
//
//	p, <subject>, <resource>, <action>, <object>[, allow|deny]
//	g, <account-or-group>, <role>
//
// and decided the way Argo CD decides them: the default role first, then the
// subject with every role it reaches through g lines (deny beats allow), then
// each of the caller's groups that some g line names first; first allow
// wins. Project role subjects (proj:<project>:<role>) can never reach
// outside their project, whatever the lines say.
//
// Resource, action and object are glob patterns where '*' also spans '/'
// (gobwas/glob semantics, as in Argo CD), or regular expressions in regex
// match mode. Where Argo CD is lax, Gatehouse is strict: a regex must match
// the whole string (Argo CD's matches anywhere), an invalid glob or regex
// fails the load (Argo CD's silently never matches), and roles nest to any
// depth, cycles included (casbin stops after 10 levels), within a bound on
// the work of resolving them (MaxReach) that no real policy comes near.
//
// An Engine is immutable: a new policy means a new Engine, which callers
// swap in atomically (an atomic.Pointer). Patterns are compiled and the role
// graph resolved once, when the engine is built, so a decision looks only at
// the lines of the roles involved. Each engine keeps a bounded cache of its
// own decisions, which therefore dies with it: a repeated question costs one
// hash and one map lookup, and allocates nothing.
package policy
