package route

import (
	"bytes"
	"regexp"
	"slices"
	"strings"
	"sync"
)

// Table is the compiled, immutable route table of one listener. Lookup may
// be called from any number of goroutines at once. Publish a Table with an
// atomic.Pointer; a reload compiles a new one and swaps it in.
type Table struct {
	routes []*Route

	exact   map[string]*group // lower-case host -> its routes and those of every wildcard covering it
	wild    map[string]*group // ".example.com" -> its routes and those of every shorter wildcard covering it
	maxWild int               // longest wildcard key, bounding the suffixes Lookup tries
	any     *group            // routes without a host condition; nil when none
	// first0 is routes[0] when it has no condition: it matches every
	// request, so Lookup returns it without looking at the request.
	first0 *Route

	scratch sync.Pool // *[]byte for hosts with upper case and paths that need normalising
}

// group indexes a set of routes by path. A route with match.path is in
// exact; one with a path_prefix is in the prefix tree (and, for a prefix not
// ending in "/", in exact under the prefix itself); one with only a
// path_regex is in the tree under the directory of the regex's literal
// prefix, or in rest when it has none; the others are in rest. Route lists
// are ascending route indexes.
type group struct {
	exact map[string][]int32
	root  *pnode // nil when no route has a path_prefix
	rest  []int32
}

// pnode is a node of the prefix tree; the root stands for "/", its child
// "api" for "/api/". routes holds the routes whose prefix is this node's
// path or any ancestor's, so that Lookup only needs the deepest node it
// reaches.
type pnode struct {
	children map[string]*pnode
	own      []int32
	routes   []int32
}

// Routes returns the routes in order. The slice is shared: do not modify it.
func (t *Table) Routes() []*Route { return t.routes }

// Lookup returns the first route (lowest index) whose every condition holds
// for r, or nil when none does (the caller answers 404). It makes no
// allocation, does not retain r, and runs in time bounded by the size of r
// and the depth of the indexes, not by the number of routes: the host picks
// one group (exact name, else the longest matching wildcard) plus the
// routes without host, the path picks candidates in each, and the remaining
// conditions are checked on the candidates in route order until one holds.
func (t *Table) Lookup(r *Request) *Route {
	if t.first0 != nil {
		return t.first0
	}
	var buf *[]byte
	host := hostName(r.Host)
	if hasUpper(host) {
		buf = t.getScratch()
		*buf = append((*buf)[:0], host...)
		lower(*buf)
		host = *buf
	}
	v := view{method: r.Method, fields: r.Fields, ip: r.ClientIP}
	path, query := splitTarget(r.Target)
	v.query = query
	if len(path) == 1 && path[0] == '*' || pathIsNormal(path) {
		v.path = path
	} else {
		if buf == nil {
			buf = t.getScratch()
			*buf = (*buf)[:0]
		}
		n := len(*buf)
		*buf = NormalPath(*buf, path)
		v.path = (*buf)[n:] // host, if it was lowered into *buf, still holds its bytes even if the append moved *buf
	}

	var g *group
	if len(host) > 0 {
		if g = t.exact[string(host)]; g == nil && t.wild != nil {
			g = t.wildcard(host)
		}
	}
	var lists [6][]int32
	n := 0
	if g != nil {
		n = g.candidates(v.path, &lists, n)
	}
	if t.any != nil {
		n = t.any.candidates(v.path, &lists, n)
	}
	res := t.first(lists[:n], &v)
	if buf != nil {
		t.putScratch(buf)
	}
	return res
}

// wildcard returns the group of the longest wildcard that host lies under.
// It tries each suffix starting at a dot (not the first byte, since
// "*.example.com" does not match ".example.com"), longest first, but none
// longer than the longest configured wildcard.
func (t *Table) wildcard(host []byte) *group {
	for i := 1; i < len(host); i++ {
		if host[i] != '.' || len(host)-i > t.maxWild {
			continue
		}
		if g := t.wild[string(host[i:])]; g != nil {
			return g
		}
	}
	return nil
}

// candidates adds g's route lists for path to lists[n:] and returns the new n.
func (g *group) candidates(path []byte, lists *[6][]int32, n int) int {
	if l := g.exact[string(path)]; len(l) > 0 {
		lists[n] = l
		n++
	}
	if g.root != nil && len(path) > 0 && path[0] == '/' {
		node := g.root
		for i := 1; ; {
			j := bytes.IndexByte(path[i:], '/')
			if j < 0 {
				break
			}
			child := node.children[string(path[i:i+j])]
			if child == nil {
				break
			}
			node = child
			i += j + 1
		}
		if len(node.routes) > 0 {
			lists[n] = node.routes
			n++
		}
	}
	if len(g.rest) > 0 {
		lists[n] = g.rest
		n++
	}
	return n
}

// first merges the ascending lists and returns the first route whose
// remaining conditions hold.
func (t *Table) first(lists [][]int32, v *view) *Route {
	for {
		best := int32(-1)
		for _, l := range lists {
			if len(l) > 0 && (best < 0 || l[0] < best) {
				best = l[0]
			}
		}
		if best < 0 {
			return nil
		}
		for k := range lists {
			if len(lists[k]) > 0 && lists[k][0] == best {
				lists[k] = lists[k][1:]
			}
		}
		if r := t.routes[best]; r.m.matchRest(v) {
			return r
		}
	}
}

func (t *Table) getScratch() *[]byte { return t.scratch.Get().(*[]byte) }

func (t *Table) putScratch(b *[]byte) {
	if cap(*b) <= 64<<10 { // a huge path should not pin its buffer
		t.scratch.Put(b)
	}
}

func lower(b []byte) {
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
}

// build indexes compiled routes.
func build(routes []*Route) *Table {
	t := &Table{routes: routes}
	if len(routes) > 0 && routes[0].m.matchesAll() {
		t.first0 = routes[0]
	}
	t.scratch.New = func() any { b := make([]byte, 0, 512); return &b }

	exact := map[string][]int32{}
	wild := map[string][]int32{}
	var anyHost []int32
	for _, r := range routes {
		i := int32(r.index)
		if len(r.m.hosts) == 0 {
			anyHost = append(anyHost, i)
			continue
		}
		for _, h := range r.m.hosts {
			if h[0] == '.' {
				wild[h] = append(wild[h], i)
				t.maxWild = max(t.maxWild, len(h))
			} else {
				exact[h] = append(exact[h], i)
			}
		}
	}
	// covering returns the routes of every wildcard that name (no leading
	// dot) lies under.
	covering := func(name string, into []int32) []int32 {
		for i := 1; i < len(name); i++ {
			if name[i] == '.' {
				into = append(into, wild[name[i:]]...)
			}
		}
		return into
	}
	if len(exact) > 0 {
		t.exact = make(map[string]*group, len(exact))
		for h, l := range exact {
			t.exact[h] = newGroup(routes, covering(h, slices.Clone(l)))
		}
	}
	if len(wild) > 0 {
		t.wild = make(map[string]*group, len(wild))
		for w, l := range wild {
			t.wild[w] = newGroup(routes, covering(w[1:], slices.Clone(l)))
		}
	}
	if len(anyHost) > 0 {
		t.any = newGroup(routes, anyHost)
	}
	return t
}

func newGroup(routes []*Route, idx []int32) *group {
	slices.Sort(idx)
	idx = slices.Compact(idx)
	g := &group{exact: map[string][]int32{}}
	for _, i := range idx {
		m := &routes[i].m
		switch {
		case m.hasPath:
			g.exact[m.path] = append(g.exact[m.path], i)
		case m.hasPrefix:
			p := m.prefix
			if !strings.HasSuffix(p, "/") {
				g.exact[p] = append(g.exact[p], i)
				p += "/"
			}
			g.insert(p, i)
		case m.re != nil && regexDir(m.re) != "":
			// Every path the regex matches starts with its literal
			// prefix, so it is a candidate only under the prefix's
			// directory: "/svc3/[0-9]+" sits at "/svc3/".
			g.insert(regexDir(m.re), i)
		default:
			g.rest = append(g.rest, i)
		}
	}
	if g.root != nil {
		g.root.inherit(nil)
	}
	return g
}

// insert adds route i to the node of prefix p, which ends in "/".
func (g *group) insert(p string, i int32) {
	if g.root == nil {
		g.root = &pnode{}
	}
	n := g.root
	if len(p) > 1 {
		for _, seg := range strings.Split(p[1:len(p)-1], "/") {
			c := n.children[seg]
			if c == nil {
				if n.children == nil {
					n.children = map[string]*pnode{}
				}
				c = &pnode{}
				n.children[seg] = c
			}
			n = c
		}
	}
	n.own = append(n.own, i)
}

// regexDir returns the longest prefix ending in "/" of the literal text
// that begins every match of re, "" when there is none.
func regexDir(re *regexp.Regexp) string {
	lit, _ := re.LiteralPrefix()
	if !strings.HasPrefix(lit, "/") {
		return ""
	}
	return lit[:strings.LastIndexByte(lit, '/')+1]
}

// inherit sets n.routes to n's own routes merged with its ancestors'.
func (n *pnode) inherit(parent []int32) {
	n.routes = append(slices.Clone(parent), n.own...)
	slices.Sort(n.routes)
	for _, c := range n.children {
		c.inherit(n.routes)
	}
}
