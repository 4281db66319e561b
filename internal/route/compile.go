package route

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"
)

// Action is what a route does with a request it matches.
type Action uint8

const (
	ActionPool     Action = iota + 1 // forward to Route.Pool
	ActionSplit                      // forward to Route.PickPool()
	ActionRedirect                   // answer Route.Redirect()
	ActionRespond                    // answer Route.Respond()
)

func (a Action) String() string {
	switch a {
	case ActionPool:
		return "pool"
	case ActionSplit:
		return "split"
	case ActionRedirect:
		return "redirect"
	case ActionRespond:
		return "respond"
	}
	return "none"
}

// Field is one header field of a modifier.
type Field struct {
	Name, Value string // Name as configured
}

// Ops is a compiled HeaderOps: Remove (lower-case names), then Set, then Add,
// each sorted by name. A name appears in at most one of the three, and never
// a hop-by-hop or framing field. Read-only.
type Ops struct {
	Remove []string
	Set    []Field
	Add    []Field
}

// Drops reports whether a field named name is removed or replaced (Remove or
// Set), compared case-insensitively.
func (o *Ops) Drops(name []byte) bool {
	for _, n := range o.Remove {
		if equalFold(name, n) {
			return true
		}
	}
	for i := range o.Set {
		if foldEqual(name, o.Set[i].Name) {
			return true
		}
	}
	return false
}

// foldEqual compares b and s ASCII case-insensitively.
func foldEqual(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		x, y := b[i], s[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// Empty reports whether the ops change nothing.
func (o *Ops) Empty() bool { return len(o.Remove)+len(o.Set)+len(o.Add) == 0 }

// Route is one compiled route. It is immutable and safe for concurrent use;
// the slices and pointers its methods return are shared and must not be
// modified.
type Route struct {
	index       int
	name        string
	action      Action
	pool        string
	split       *split
	redirect    Redirect
	respond     Respond
	stripPrefix string // without trailing "/"
	addPrefix   string
	hostRewrite string
	reqOps      Ops
	respOps     Ops
	m           matcher
}

// Index is the route's position in the []Spec given to Compile.
func (r *Route) Index() int { return r.index }

// Name is the configured name, "" when unnamed.
func (r *Route) Name() string { return r.name }

// Action is the route's action.
func (r *Route) Action() Action { return r.action }

// Pool is the pool of an ActionPool route, "" for the others.
func (r *Route) Pool() string { return r.pool }

// PickPool returns the pool a request on this route goes to: Pool for an
// ActionPool route, the next pool of the smooth weighted round robin for an
// ActionSplit route (lock-free, 0 allocations), "" otherwise.
func (r *Route) PickPool() string {
	if r.split != nil {
		return r.split.pick()
	}
	return r.pool
}

// SplitTargets returns the targets of an ActionSplit route, nil otherwise.
func (r *Route) SplitTargets() []SplitTarget {
	if r.split == nil {
		return nil
	}
	return r.split.targets
}

// Redirect returns the redirect of an ActionRedirect route with its default
// applied (Status 301; Scheme lower case, Host canonical).
func (r *Route) Redirect() Redirect { return r.redirect }

// Respond returns the fixed answer of an ActionRespond route with its
// defaults applied (Status 200, ContentType "text/plain; charset=utf-8").
func (r *Route) Respond() Respond { return r.respond }

// HostRewrite is the Host to send to the backend, "" to keep the client's.
func (r *Route) HostRewrite() string { return r.hostRewrite }

// RequestHeaders are the changes to the forwarded request's header.
func (r *Route) RequestHeaders() *Ops { return &r.reqOps }

// ResponseHeaders are the changes to the response's header.
func (r *Route) ResponseHeaders() *Ops { return &r.respOps }

// DefaultContentType is the content type of a respond action without one.
const DefaultContentType = "text/plain; charset=utf-8"

// Compile validates the routes of one listener and compiles them into an
// indexed, immutable Table. It reports every problem at once, joined, each
// an *Error naming the route index and field. Compile is a pure function: it
// may run concurrently with lookups on an older table.
func Compile(specs []Spec) (*Table, error) {
	var errs []error
	routes := make([]*Route, len(specs))
	names := map[string]int{}
	for i := range specs {
		c := &checker{route: i}
		r := c.compileRoute(&specs[i])
		if r.name != "" {
			if j, ok := names[r.name]; ok {
				c.errf("name", "%q is already the name of routes[%d]", r.name, j)
			} else {
				names[r.name] = i
			}
		}
		errs = append(errs, c.errs...)
		routes[i] = r
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return build(routes), nil
}

func (c *checker) compileRoute(s *Spec) *Route {
	r := &Route{index: c.route, name: s.Name}
	if strings.ContainsAny(s.Name, "/") || checkFieldValue(s.Name) != nil {
		c.errf("name", "%q: a name may not contain '/', control characters or surrounding spaces", s.Name)
	}
	r.m = c.compileMatch(&s.Match)
	c.compileAction(s, r)

	forwards := r.action == ActionPool || r.action == ActionSplit
	onlyForward := func(field string, set bool) {
		if set && !forwards && r.action != 0 {
			c.errf(field, "applies only to routes with pool or split, not %s", r.action)
		}
	}
	onlyForward("strip_prefix", s.StripPrefix != "")
	onlyForward("add_prefix", s.AddPrefix != "")
	onlyForward("host_rewrite", s.HostRewrite != "")
	onlyForward("request_headers", len(s.RequestHeaders.Set)+len(s.RequestHeaders.Add)+len(s.RequestHeaders.Remove) > 0)
	if s.StripPrefix != "" {
		if err := checkPath(s.StripPrefix, true); err != nil {
			c.err("strip_prefix", err)
		} else if s.StripPrefix == "/" {
			c.errf("strip_prefix", `"/" strips nothing`)
		}
		r.stripPrefix = strings.TrimSuffix(s.StripPrefix, "/")
	}
	if s.AddPrefix != "" {
		if err := checkPath(s.AddPrefix, true); err != nil {
			c.err("add_prefix", err)
		} else if s.AddPrefix == "/" {
			c.errf("add_prefix", `"/" adds nothing`)
		}
		r.addPrefix = strings.TrimSuffix(s.AddPrefix, "/")
	}
	if s.HostRewrite != "" {
		if err := hostPort(s.HostRewrite); err != nil {
			c.err("host_rewrite", err)
		}
		r.hostRewrite = s.HostRewrite
	}
	r.reqOps = c.compileOps("request_headers", s.RequestHeaders)
	r.respOps = c.compileOps("response_headers", s.ResponseHeaders)
	return r
}

func (c *checker) compileMatch(s *Match) matcher {
	var m matcher
	for i, h := range s.Host {
		key, err := hostPattern(h)
		if err != nil {
			c.err(fmt.Sprintf("match.host[%d]", i), err)
			continue
		}
		if !slices.Contains(m.hosts, key) {
			m.hosts = append(m.hosts, key)
		}
	}
	if s.PathPrefix != "" {
		if err := checkPath(s.PathPrefix, true); err != nil {
			c.err("match.path_prefix", err)
		}
		m.prefix, m.hasPrefix = s.PathPrefix, true
	}
	if s.Path != "" {
		if err := checkPath(s.Path, true); err != nil {
			c.err("match.path", err)
		}
		m.path, m.hasPath = s.Path, true
		if m.hasPrefix && !prefixMatch([]byte(m.path), m.prefix) {
			c.errf("match.path", "%q is outside match.path_prefix %q: the route can never match", m.path, m.prefix)
		}
	}
	if s.PathRegex != "" {
		if _, err := regexp.Compile(s.PathRegex); err != nil {
			c.err("match.path_regex", err)
		} else {
			m.re = regexp.MustCompile(`^(?:` + s.PathRegex + `)$`)
			m.fast = compileFast(s.PathRegex)
		}
	}
	for i, meth := range s.Method {
		f := fmt.Sprintf("match.method[%d]", i)
		switch {
		case !isToken(meth):
			c.errf(f, "%q is not a method", meth)
		case meth != strings.ToUpper(meth) && standardMethod(strings.ToUpper(meth)):
			c.errf(f, "%q never matches: methods are case-sensitive (did you mean %q?)", meth, strings.ToUpper(meth))
		case !slices.Contains(m.methods, meth):
			m.methods = append(m.methods, meth)
		}
	}
	m.headers = c.compilePairs("match.headers", s.Headers, "header")
	m.query = c.compilePairs("match.query", s.Query, "query")
	m.cookies = c.compilePairs("match.cookies", s.Cookies, "cookie")
	for i, p := range s.ClientIP {
		if !p.IsValid() {
			c.errf(fmt.Sprintf("match.client_ip[%d]", i), "not a CIDR prefix")
			continue
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		m.clientIP = append(m.clientIP, p.Masked())
	}
	return m
}

func (c *checker) compileAction(s *Spec, r *Route) {
	var set []string
	if s.Pool != "" {
		set = append(set, "pool")
	}
	if len(s.Split) > 0 {
		set = append(set, "split")
	}
	if s.Redirect != nil {
		set = append(set, "redirect")
	}
	if s.Respond != nil {
		set = append(set, "respond")
	}
	switch len(set) {
	case 0:
		c.errf("", "no action: exactly one of pool, split, redirect, respond is required")
		return
	case 1:
	default:
		c.errf("", "%s are set: exactly one action is allowed", strings.Join(set, " and "))
		return
	}
	switch set[0] {
	case "pool":
		r.action, r.pool = ActionPool, s.Pool
	case "split":
		r.action = ActionSplit
		r.split = c.compileSplit(s.Split)
	case "redirect":
		r.action = ActionRedirect
		r.redirect = c.compileRedirect(*s.Redirect)
	case "respond":
		r.action = ActionRespond
		r.respond = c.compileRespond(*s.Respond)
	}
}

func (c *checker) compileSplit(ts []SplitTarget) *split {
	if len(ts) > maxSplitTargets {
		c.errf("split", "%d targets; at most %d", len(ts), maxSplitTargets)
		return nil
	}
	ok := true
	for i, t := range ts {
		if t.Pool == "" {
			c.errf(fmt.Sprintf("split[%d].pool", i), "required")
			ok = false
		}
		for j := range i {
			if ts[j].Pool == t.Pool && t.Pool != "" {
				c.errf(fmt.Sprintf("split[%d].pool", i), "%q is already split[%d]", t.Pool, j)
				ok = false
			}
		}
		if t.Weight < 1 || t.Weight > maxSplitWeight {
			c.errf(fmt.Sprintf("split[%d].weight", i), "must be 1-%d, got %d", maxSplitWeight, t.Weight)
			ok = false
		}
	}
	if !ok {
		return nil
	}
	return newSplit(ts)
}

func (c *checker) compileRedirect(d Redirect) Redirect {
	if d == (Redirect{}) {
		c.errf("redirect", "sets nothing: give at least one of scheme, host, port, path")
	}
	if d.Status == 0 {
		d.Status = 301
	}
	switch d.Status {
	case 301, 302, 303, 307, 308:
	default:
		c.errf("redirect.status", "must be 301, 302, 303, 307 or 308, got %d", d.Status)
	}
	if d.Scheme != "" {
		d.Scheme = strings.ToLower(d.Scheme)
		if d.Scheme != "http" && d.Scheme != "https" {
			c.errf("redirect.scheme", "must be http or https, got %q", d.Scheme)
		}
	}
	if d.Host != "" {
		h, err := canonicalHost(d.Host)
		if err != nil {
			c.err("redirect.host", err)
		}
		d.Host = h
	}
	if d.Port < 0 || d.Port > 65535 {
		c.errf("redirect.port", "must be 1-65535, got %d", d.Port)
	}
	if d.Path != "" {
		if err := checkPath(d.Path, false); err != nil {
			c.err("redirect.path", err)
		}
	}
	return d
}

func (c *checker) compileRespond(d Respond) Respond {
	if d.Status == 0 {
		d.Status = 200
	}
	if d.Status < 200 || d.Status > 599 {
		c.errf("respond.status", "must be 200-599, got %d", d.Status)
	} else if (d.Status == 204 || d.Status == 304) && d.Body != "" {
		c.errf("respond.body", "a %d response has no body", d.Status)
	}
	if d.ContentType == "" {
		d.ContentType = DefaultContentType
	} else if err := checkFieldValue(d.ContentType); err != nil {
		c.err("respond.content_type", err)
	}
	return d
}
