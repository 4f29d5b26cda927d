package service

import (
	"net/url"
	"strings"
)

// The route table is matched by a tree of its own that applies
// net/http's ServeMux rules (Go 1.22 patterns, no host) to a canonical
// path. ServeMux itself checks each pattern and finds conflicting pairs
// when the table is compiled; matching through it on every request cost a
// request of its own, a read lock, and a second walk with a trailing slash
// added to look for a redirect. TestRouteTreeMatchesServeMux holds the
// tree to ServeMux's answers on random tables and paths.
//
// The rules, as ServeMux applies them:
//   - patterns with the request's method are tried first, then (for HEAD)
//     those with GET, then those without a method;
//   - within those, the path is walked a segment at a time, trying a
//     literal segment first, then a {name} wildcard (which does not match
//     the empty segment after a trailing slash), then a multi wildcard
//     ({name...}, or a trailing '/') that takes the rest, backtracking
//     when a branch finds nothing;
//   - a match is not taken when the path has no trailing slash, the match
//     is a multi wildcard taking something, and the path with a slash
//     added matches exactly: ServeMux redirects there, and forward auth,
//     which never follows a redirect, finds no route.
//
// One pattern ServeMux takes is kept out: parseMatch refuses an empty
// segment ("/a//b"), which ServeMux files with the {name} wildcards and no
// canonical path has.

// routeTree is the compiled route table: a tree of path segments per
// method ("" for the patterns without one).
type routeTree map[string]*routeNode

// routeNode is where a pattern's path has reached after some segments.
type routeNode struct {
	route    *fwdRoute             // a pattern ends here
	literal  map[string]*routeNode // the next segment is this literal ("/" for {$})
	wildcard *routeNode            // the next segment is a {name}
	multi    *fwdRoute             // the rest is a {name...} or a trailing '/'
}

// patternSegment is one segment of a pattern's path.
type patternSegment struct {
	s     string // the literal ("/" for {$}), or the wildcard's name ("" for a trailing '/')
	wild  bool
	multi bool
}

// pathSegments splits the path of a pattern ServeMux accepted (parseMatch
// checked it) the way ServeMux does.
func pathSegments(path string) (segs []patternSegment) {
	for rest := path; rest != ""; {
		rest = rest[1:]
		if rest == "" {
			segs = append(segs, patternSegment{wild: true, multi: true})
			break
		}
		seg := rest
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			seg, rest = rest[:i], rest[i:]
		} else {
			rest = ""
		}
		switch {
		case seg == "{$}":
			segs = append(segs, patternSegment{s: "/"})
		case strings.HasPrefix(seg, "{"):
			name, multi := strings.CutSuffix(seg[1:len(seg)-1], "...")
			segs = append(segs, patternSegment{s: name, wild: true, multi: multi})
		default:
			if u, err := url.PathUnescape(seg); err == nil {
				seg = u // ServeMux unescapes a literal, and keeps it when it cannot
			}
			segs = append(segs, patternSegment{s: seg})
		}
	}
	return segs
}

// add puts rt, whose pattern's path is segs, into the tree.
func (t routeTree) add(method string, segs []patternSegment, rt *fwdRoute) {
	n := t[method]
	if n == nil {
		n = &routeNode{}
		t[method] = n
	}
	for _, seg := range segs {
		switch {
		case seg.multi:
			n.multi = rt
			return
		case seg.wild:
			if n.wildcard == nil {
				n.wildcard = &routeNode{}
			}
			n = n.wildcard
		default:
			if n.literal == nil {
				n.literal = map[string]*routeNode{}
			}
			c := n.literal[seg.s]
			if c == nil {
				c = &routeNode{}
				n.literal[seg.s] = c
			}
			n = c
		}
	}
	n.route = rt
}

// lookup finds the route of a canonical path and appends the values of
// its named wildcards, in the pattern's order, to vals.
func (t routeTree) lookup(method, path string, vals []string) (*fwdRoute, []string) {
	rt, vals := t.find(method, path, vals)
	if !rt.exact(path) && !strings.HasSuffix(path, "/") && path != "" {
		var spare [4]string
		slashed := path + "/"
		if rt2, _ := t.find(method, slashed, spare[:0]); rt2.exact(slashed) {
			return nil, nil // ServeMux would redirect to slashed
		}
	}
	return rt, vals
}

// find applies the method rules, then the path rules.
func (t routeTree) find(method, path string, vals []string) (*fwdRoute, []string) {
	if rt, v := t[method].match(path, vals); rt != nil {
		return rt, v
	}
	if method == "HEAD" {
		if rt, v := t["GET"].match(path, vals); rt != nil {
			return rt, v
		}
	}
	return t[""].match(path, vals)
}

// match walks the rest of the path from n.
func (n *routeNode) match(path string, vals []string) (*fwdRoute, []string) {
	if n == nil {
		return nil, nil
	}
	if path == "" {
		return n.route, vals
	}
	seg, rest := "/", ""
	if path != "/" {
		seg = path[1:]
		if i := strings.IndexByte(seg, '/'); i >= 0 {
			seg, rest = seg[:i], seg[i:]
		}
	}
	if rt, v := n.literal[seg].match(rest, vals); rt != nil {
		return rt, v
	}
	if seg != "/" {
		if rt, v := n.wildcard.match(rest, append(vals, seg)); rt != nil {
			return rt, v
		}
	}
	if n.multi != nil {
		if n.multi.named {
			vals = append(vals, path[1:])
		}
		return n.multi, vals
	}
	return nil, nil
}

// exact reports whether rt matches path exactly: not through a multi
// wildcard that takes something (ServeMux's exactMatch).
func (rt *fwdRoute) exact(path string) bool {
	switch {
	case rt == nil:
		return false
	case !rt.multi:
		return true
	case !strings.HasSuffix(path, "/"):
		return false
	}
	return rt.segments == strings.Count(path, "/")
}
