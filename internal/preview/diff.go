package preview

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Kind says what a Change is.
type Kind string

// The kinds of change, in the order Diff lists them within one listener or
// pool.
const (
	SettingChanged  Kind = "setting_changed" // a top-level key (log_level, admin_token, ...)
	ListenerAdded   Kind = "listener_added"
	ListenerRemoved Kind = "listener_removed"
	ListenerChanged Kind = "listener_changed" // listen_addr or a listener key
	RouteAdded      Kind = "route_added"
	RouteRemoved    Kind = "route_removed"
	RouteChanged    Kind = "route_changed" // position, match, action, rewrite or headers
	PoolAdded       Kind = "pool_added"
	PoolRemoved     Kind = "pool_removed"
	PoolChanged     Kind = "pool_changed" // a pool key without a kind of its own
	StrategyChanged Kind = "strategy_changed"
	StickyReset     Kind = "sticky_reset" // pinned clients move
	BackendRemoved  Kind = "backend_removed"
	BackendAdded    Kind = "backend_added"
	WeightChanged   Kind = "weight_changed"
	HashKeysMoved   Kind = "hash_keys_moved"
)

var kindOrder = []Kind{
	SettingChanged,
	ListenerAdded, ListenerRemoved, ListenerChanged, RouteAdded, RouteRemoved, RouteChanged,
	PoolAdded, PoolRemoved, PoolChanged, StrategyChanged, StickyReset, BackendRemoved, BackendAdded, WeightChanged, HashKeysMoved,
}

// group is where a kind sorts: top-level keys, then listeners with their
// routes, then pools with their backends.
func (k Kind) group() int {
	i := slices.Index(kindOrder, k)
	switch {
	case i < 1:
		return 0
	case i <= slices.Index(kindOrder, RouteChanged):
		return 1
	}
	return 2
}

// Change is one thing a reload would change.
type Change struct {
	Kind     Kind   `json:"kind"`
	Listener string `json:"listener,omitempty"`
	Route    string `json:"route,omitempty"` // the route's label
	Pool     string `json:"pool,omitempty"`
	Backend  string `json:"backend,omitempty"` // the backend's URL
	// Settings are the keys that changed (setting_changed, listener_changed,
	// route_changed, pool_changed, strategy_changed, sticky_reset,
	// weight_changed).
	Settings []Setting `json:"settings,omitempty"`
	// Moved is the hash_keys_moved count (on the real tables).
	Moved *Moved `json:"moved,omitempty"`
	// Message is one line for people, naming what changes and its effect.
	Message string `json:"message"`
}

// Setting is one key's old and new value. A secret's value is "(hidden)".
type Setting struct {
	Key string `json:"key"`
	Old string `json:"old"`
	New string `json:"new"`
}

func (s Setting) String() string {
	if s.Old == hidden || s.New == hidden {
		return s.Key + " changed"
	}
	return fmt.Sprintf("%s %s -> %s", s.Key, quoteEmpty(s.Old), quoteEmpty(s.New))
}

const hidden = "(hidden)"

func quoteEmpty(s string) string {
	if s == "" {
		return `""`
	}
	return s
}

// Moved is how many keys of a consistent-hash table go to another backend.
type Moved struct {
	Percent float64 `json:"percent"`
	// Slots is the size of the new table; OldSlots that of the old one.
	Slots    int `json:"slots"`
	OldSlots int `json:"old_slots"`
	// Sampled is how many hashes were compared when the sizes differ (0
	// when every table entry was compared).
	Sampled int `json:"sampled,omitempty"`
}

// Refused returns the error a reload from running to next would fail with
// because it changes a key only a restart can change, or nil. It matches
// the engine's reload check (internal/engine fixedKeys; a test there keeps
// the two in step).
func Refused(running, next *Model) error {
	for _, k := range []struct{ key, cur, file string }{
		{"admin_addr", running.AdminAddr, next.AdminAddr},
		{"log_format", running.LogFormat, next.LogFormat},
	} {
		if k.cur != k.file {
			return fmt.Errorf("%s: cannot change on reload (running %q, file says %q); restart fulcrum", k.key, k.cur, k.file)
		}
	}
	return nil
}

// Diff lists what a reload from old to next changes, sorted: top-level
// keys, then each listener (by name) with its routes (by label), then each
// pool (by name) with its backends (by URL). Both models must share a salt,
// or their fingerprints could not be compared.
func Diff(old, next *Model) ([]Change, error) {
	if old.Salt != next.Salt {
		return nil, errors.New("preview: the models have different salts; build the new one with the running one's salt")
	}
	var cs []Change
	for _, s := range diffSettings(old.Settings, next.Settings, nil) {
		c := Change{Kind: SettingChanged, Settings: []Setting{s}, Message: s.String()}
		if s.Key == "admin_token" {
			switch {
			case s.Old == "":
				c.Message = "admin_token set: the admin API will require it"
			case s.New == "":
				c.Message = "admin_token removed: the admin API will not require a token"
			default:
				c.Message = "admin_token changed: the admin API will require the new one"
			}
		}
		cs = append(cs, c)
	}
	cs = append(cs, diffListeners(old.Listeners, next.Listeners)...)
	cs = append(cs, diffPools(old.Pools, next.Pools)...)
	slices.SortStableFunc(cs, func(a, b Change) int {
		return cmp.Or(
			cmp.Compare(a.Kind.group(), b.Kind.group()),
			cmp.Compare(a.Listener+a.Pool, b.Listener+b.Pool),
			cmp.Compare(slices.Index(kindOrder, a.Kind), slices.Index(kindOrder, b.Kind)),
			cmp.Compare(a.Route+a.Backend+settingKey(a), b.Route+b.Backend+settingKey(b)),
		)
	})
	return cs, nil
}

func settingKey(c Change) string {
	if len(c.Settings) == 0 {
		return ""
	}
	return c.Settings[0].Key
}

// diffSettings compares two settings maps key by key (sorted), leaving out
// the keys skip names. A fingerprint is shown as "(hidden)", or as "" when
// the secret is unset.
func diffSettings(old, next map[string]string, skip func(string) bool) []Setting {
	var out []Setting
	keys := slices.Sorted(maps.Keys(old))
	for k := range next {
		if _, ok := old[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		o, n := old[k], next[k]
		if o == n || (skip != nil && skip(k)) {
			continue
		}
		out = append(out, Setting{Key: k, Old: shown(o), New: shown(n)})
	}
	return out
}

func shown(v string) string {
	if strings.HasPrefix(v, fingerprintPrefix) {
		return hidden
	}
	return v
}

func joinSettings(ss []Setting) string {
	parts := make([]string, len(ss))
	for i, s := range ss {
		parts[i] = s.String()
	}
	return strings.Join(parts, ", ")
}

// byName indexes items by name.
func byName[T any](items []T, name func(*T) string) map[string]*T {
	m := make(map[string]*T, len(items))
	for i := range items {
		m[name(&items[i])] = &items[i]
	}
	return m
}

func diffListeners(old, next []Listener) []Change {
	lname := func(l *Listener) string { return l.Name }
	laddr := func(l *Listener) string { return l.ListenAddr }
	oldByName, nextByName := byName(old, lname), byName(next, lname)
	// The engine keeps a socket for the listener that names the same
	// listen_addr, whatever its name.
	oldByAddr, nextByAddr := byName(old, laddr), byName(next, laddr)
	var cs []Change
	for i := range old {
		o := &old[i]
		if nextByName[o.Name] != nil {
			continue
		}
		msg := fmt.Sprintf("listener %s removed: stops accepting on %s, its connections drain", o.Name, o.ListenAddr)
		if t := nextByAddr[o.ListenAddr]; t != nil && oldByName[t.Name] == nil {
			msg = fmt.Sprintf("listener %s removed: listener %s takes over its socket on %s", o.Name, t.Name, o.ListenAddr)
		}
		cs = append(cs, Change{Kind: ListenerRemoved, Listener: o.Name, Message: msg})
	}
	for i := range next {
		n := &next[i]
		o := oldByName[n.Name]
		if o == nil {
			msg := fmt.Sprintf("listener %s added on %s (%s)", n.Name, n.ListenAddr, plural(len(n.Routes), "route"))
			if was := oldByAddr[n.ListenAddr]; was != nil && nextByName[was.Name] == nil {
				msg += fmt.Sprintf(", keeping the socket and connections of listener %s", was.Name)
			}
			cs = append(cs, Change{Kind: ListenerAdded, Listener: n.Name, Message: msg})
			continue
		}
		var ss []Setting
		if o.ListenAddr != n.ListenAddr {
			ss = append(ss, Setting{Key: "listen_addr", Old: o.ListenAddr, New: n.ListenAddr})
		}
		ss = append(ss, diffSettings(o.Settings, n.Settings, nil)...)
		if len(ss) > 0 {
			cs = append(cs, Change{Kind: ListenerChanged, Listener: n.Name, Settings: ss,
				Message: fmt.Sprintf("listener %s changed: %s", n.Name, joinSettings(ss))})
		}
		cs = append(cs, diffRoutes(n.Name, o.Routes, n.Routes)...)
	}
	return cs
}

func diffRoutes(listener string, old, next []Route) []Change {
	label := func(r *Route) string { return r.Label }
	oldBy, nextBy := byName(old, label), byName(next, label)
	var cs []Change
	for i := range old {
		if o := &old[i]; nextBy[o.Label] == nil {
			cs = append(cs, Change{Kind: RouteRemoved, Listener: listener, Route: o.Label,
				Message: fmt.Sprintf("listener %s: route %s removed (was %s)", listener, o.Label, o.Action)})
		}
	}
	for i := range next {
		n := &next[i]
		o := oldBy[n.Label]
		if o == nil {
			cs = append(cs, Change{Kind: RouteAdded, Listener: listener, Route: n.Label,
				Message: fmt.Sprintf("listener %s: route %s added at position %d (%s)", listener, n.Label, n.Index, n.Action)})
			continue
		}
		var ss []Setting
		if o.Index != n.Index {
			ss = append(ss, Setting{Key: "position", Old: fmt.Sprint(o.Index), New: fmt.Sprint(n.Index)})
		}
		shown := map[string][2]string{
			"action": {o.Action, n.Action}, "match": {o.Match, n.Match}, "rewrite": {o.Rewrite, n.Rewrite},
		}
		for _, p := range diffSettings(o.Parts, n.Parts, nil) {
			// Show the summaries when they differ; when they do not (a
			// redirect's target, a fixed response's body) or there are
			// none (header operations may carry credentials), the part
			// is only named.
			if sh, ok := shown[p.Key]; ok && sh[0] != sh[1] {
				p.Old, p.New = sh[0], sh[1]
			}
			ss = append(ss, p)
		}
		if len(ss) > 0 {
			cs = append(cs, Change{Kind: RouteChanged, Listener: listener, Route: n.Label, Settings: ss,
				Message: fmt.Sprintf("listener %s: route %s changed: %s", listener, n.Label, joinSettings(ss))})
		}
	}
	return cs
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
