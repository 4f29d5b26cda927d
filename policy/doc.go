// Package policy decides every permission in Gatehouse (DESIGN.md §2). It
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
// each of the caller's groups that some g line binds; first allow wins.
// Project role subjects (proj:<project>:<role>) can never reach outside their
// project, whatever the lines say.
//
// Resource, action and object are glob patterns where '*' also spans '/'
// (gobwas/glob semantics, as Argo CD uses), or anchored regular expressions
// in regex match mode. Patterns are compiled once, when an Engine is built.
//
// An Engine is immutable: a new policy means a new Engine, which callers swap
// in atomically (an atomic.Pointer). Each engine keeps a bounded cache of its
// own decisions, which therefore dies with it; a repeated question costs one
// map lookup and allocates nothing.
package policy
