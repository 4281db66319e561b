package proxy

import (
	"bytes"
	"errors"
	"strconv"
	"sync/atomic"

	"fulcrum/internal/config"
	"fulcrum/internal/h1"
	"fulcrum/internal/metrics"
	"fulcrum/internal/pool"
	"fulcrum/internal/route"
	sess "fulcrum/internal/sticky"
)

// Upstream is a pool as the data path uses it: the pool and its session
// persistence state. One Upstream exists per configured pool name and is
// shared by every listener whose routes lead to it; the engine keeps it
// across reloads, so a pool keeps its sticky table whatever happens to the
// routes.
type Upstream struct {
	Name   string
	Pool   *pool.Pool
	sticky atomic.Pointer[sticky]
}

// NewUpstream returns the data path's view of p, named name.
func NewUpstream(name string, p *pool.Pool) *Upstream {
	u := &Upstream{Name: name, Pool: p}
	u.Refresh()
	return u
}

// Refresh takes the pool's current sticky configuration, keeping the
// app_cookie table while its cookie name is unchanged. Call it after
// pool.Update.
func (u *Upstream) Refresh() {
	u.sticky.Store(newSticky(u.Pool.Snapshot().Cfg.Sticky, u.sticky.Load()))
}

// SplitCookie is the cookie that keeps a client on the pool a split route
// chose, when that pool has session persistence.
const SplitCookie = "FULCRUM_SPLIT"

// Routing is one listener's route table with the upstreams its routes lead
// to. It is immutable: a reload builds a new one and swaps it in, so a
// request sees the old routes or the new ones, never a mix.
type Routing struct {
	table   *route.Table
	entries []entry // by route index
}

// entry is a compiled route with what the data path needs to act on it.
type entry struct {
	rt *route.Route
	// Label is the route's metrics label: its name, or LISTENER/INDEX.
	Label  string
	metric *metrics.Route // nil without metrics
	up     *Upstream      // ActionPool
	split  []splitTarget  // ActionSplit
	// anySticky: some split target has session persistence, so the
	// FULCRUM_SPLIT cookie is read and set.
	anySticky bool
}

type splitTarget struct {
	up *Upstream
	id uint64 // the FULCRUM_SPLIT value naming this pool (keyed like its sticky cookie)
}

// NewRouting compiles the routes of listener with their upstreams. Every
// pool a route names must be in ups. m (may be nil) gives each route its
// metrics handle.
func NewRouting(listener string, specs []route.Spec, ups map[string]*Upstream, m *metrics.Metrics) (*Routing, error) {
	t, err := route.Compile(specs)
	if err != nil {
		return nil, err
	}
	r := &Routing{table: t, entries: make([]entry, len(t.Routes()))}
	for i, rt := range t.Routes() {
		e := &r.entries[i]
		e.rt = rt
		e.Label = route.Label(listener, i, &specs[i])
		if m != nil {
			e.metric = m.Route(e.Label)
		}
		switch rt.Action() {
		case route.ActionPool:
			if e.up = ups[rt.Pool()]; e.up == nil {
				return nil, errors.New("routes[" + strconv.Itoa(i) + "].pool: unknown pool " + strconv.Quote(rt.Pool()))
			}
		case route.ActionSplit:
			for k, st := range rt.SplitTargets() {
				u := ups[st.Pool]
				if u == nil {
					return nil, errors.New("routes[" + strconv.Itoa(i) + "].split[" + strconv.Itoa(k) + "].pool: unknown pool " + strconv.Quote(st.Pool))
				}
				var secret string
				if sc := u.Pool.Snapshot().Cfg.Sticky; sc != nil {
					secret = sc.Secret
					e.anySticky = true
				}
				e.split = append(e.split, splitTarget{up: u, id: pool.StickyIDKeyed(secret, "pool\x00"+u.Name)})
			}
		}
	}
	return r, nil
}

// SinglePool is the routing of the flat form: one catch-all route, labelled
// LISTENER/0, to u.
func SinglePool(listener string, u *Upstream, m *metrics.Metrics) *Routing {
	r, err := NewRouting(listener, []route.Spec{{Pool: u.Name}}, map[string]*Upstream{u.Name: u}, m)
	if err != nil {
		panic("proxy: a catch-all route cannot fail to compile: " + err.Error())
	}
	return r
}

// reqFields presents an HTTP/1.1 request's header lines to the route table.
type reqFields h1.Request

func (f *reqFields) Len() int { return len(f.Headers) }

func (f *reqFields) At(i int) (name, value []byte) {
	h := &f.Headers[i]
	return h.Name, h.Value
}

// lookup finds the route of the connection's current request.
func (r *Routing) lookup(c *clientConn, ri *reqInfo) *entry {
	rt := r.table.Lookup(c.routeRequest(ri))
	if rt == nil {
		return nil
	}
	return &r.entries[rt.Index()]
}

var schemeHTTPS = []byte("https")

// authority returns the request's host: an absolute-form target's authority
// replaces Host (RFC 9112 section 3.2.2).
func authority(req *h1.Request) []byte {
	t := req.Target
	if len(t) == 0 || t[0] == '/' || t[0] == '*' {
		return req.Host
	}
	i := bytes.Index(t, []byte("://"))
	if i < 0 {
		return req.Host
	}
	rest := t[i+3:]
	if j := bytes.IndexAny(rest, "/?"); j >= 0 {
		return rest[:j]
	}
	return rest
}

// pickUpstream chooses the upstream of a pool or split route. For a split
// whose pools have session persistence, a client carrying a valid
// FULCRUM_SPLIT cookie stays on its pool; otherwise the split's smooth
// weighted round robin chooses, and splitSet says which cookie value to set
// (0 for none).
func (e *entry) pickUpstream(c *clientConn) (u *Upstream, splitSet uint64) {
	if e.split == nil {
		return e.up, 0
	}
	if e.anySticky {
		if v := CookieValue(c.req.Headers, SplitCookie); v != nil {
			if id, ok := sess.DecodeCookie(v); ok {
				for i := range e.split {
					if e.split[i].id == id && e.split[i].up.sticky.Load() != nil {
						return e.split[i].up, 0
					}
				}
			}
		}
	}
	name := e.rt.PickPool()
	for i := range e.split {
		if e.split[i].up.Name == name {
			t := &e.split[i]
			if t.up.sticky.Load() != nil {
				return t.up, t.id
			}
			return t.up, 0
		}
	}
	return e.split[0].up, 0 // unreachable: PickPool returns one of the targets
}

// appendSplitCookie appends the Set-Cookie value pinning the client to the
// split pool id, with the attributes of that pool's sticky cookie.
func appendSplitCookie(dst []byte, id uint64, cfg *config.Sticky, httpsClient bool) []byte {
	dst = append(dst, SplitCookie...)
	dst = append(dst, '=')
	dst = sess.AppendCookie(dst, id)
	return appendCookieAttrs(dst, cfg, httpsClient)
}
