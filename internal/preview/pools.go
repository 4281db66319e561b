package preview

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"fulcrum/internal/backend"
	"fulcrum/internal/balance"
)

func diffPools(old, next []Pool) []Change {
	name := func(p *Pool) string { return p.Name }
	oldBy, nextBy := byName(old, name), byName(next, name)
	var cs []Change
	for i := range old {
		if o := &old[i]; nextBy[o.Name] == nil {
			cs = append(cs, Change{Kind: PoolRemoved, Pool: o.Name, Message: fmt.Sprintf(
				"pool %s removed (%s): it gets no new requests, requests in flight finish", o.Name, plural(len(o.Backends), "backend"))})
		}
	}
	for i := range next {
		n := &next[i]
		o := oldBy[n.Name]
		if o == nil {
			cs = append(cs, Change{Kind: PoolAdded, Pool: n.Name, Message: fmt.Sprintf(
				"pool %s added (%s, strategy %s)", n.Name, plural(len(n.Backends), "backend"), strategyOf(n))})
			continue
		}
		cs = append(cs, diffPool(o, n)...)
	}
	return cs
}

// strategyOf is the strategy with its hash key, as the messages name it.
func strategyOf(p *Pool) string {
	if p.HashKey != "" {
		return p.Strategy + " on " + p.HashKey
	}
	return p.Strategy
}

func diffPool(o, n *Pool) []Change {
	var cs []Change
	add := func(k Kind, ss []Setting, format string, args ...any) {
		cs = append(cs, Change{Kind: k, Pool: n.Name, Settings: ss, Message: fmt.Sprintf("pool %s: ", n.Name) + fmt.Sprintf(format, args...)})
	}
	// Keys of sticky are compared only while its type stays; turning it on
	// or off, or another type, is one change.
	stickyKey := func(k string) bool {
		return strings.HasPrefix(k, "sticky.") && (o.Sticky == nil || n.Sticky == nil || o.Sticky.Type != n.Sticky.Type)
	}
	ss := diffSettings(o.Settings, n.Settings, stickyKey)
	if o.Sticky == nil && n.Sticky != nil {
		ss = append([]Setting{{Key: "sticky", Old: "off", New: n.Sticky.Type}}, ss...)
	}
	if len(ss) > 0 {
		cs = append(cs, Change{Kind: PoolChanged, Pool: n.Name, Settings: ss,
			Message: fmt.Sprintf("pool %s changed: %s", n.Name, joinSettings(ss))})
	}

	so, sn := strategyOf(o), strategyOf(n)
	if so != sn {
		effect := ""
		switch ho, hn := balance.HashStrategy(o.Strategy), balance.HashStrategy(n.Strategy); {
		case ho && hn:
			effect = ": every key maps anew"
		case ho:
			effect = ": keys are no longer kept on one backend"
		}
		add(StrategyChanged, []Setting{{Key: "strategy", Old: so, New: sn}}, "strategy %s -> %s%s", so, sn, effect)
	}

	if o.Sticky != nil {
		cs = append(cs, stickyResets(o, n)...)
	}

	oldBy := byName(o.Backends, func(b *Backend) string { return b.Key })
	nextBy := byName(n.Backends, func(b *Backend) string { return b.Key })
	for i := range o.Backends {
		if b := &o.Backends[i]; nextBy[b.Key] == nil {
			cs = append(cs, Change{Kind: BackendRemoved, Pool: n.Name, Backend: b.URL, Message: fmt.Sprintf(
				"pool %s: backend %s removed: it gets no new requests, requests in flight finish", n.Name, b.URL)})
		}
	}
	for i := range n.Backends {
		b := &n.Backends[i]
		was := oldBy[b.Key]
		switch {
		case was == nil:
			cs = append(cs, Change{Kind: BackendAdded, Pool: n.Name, Backend: b.URL,
				Message: fmt.Sprintf("pool %s: backend %s added (weight %d)", n.Name, b.URL, b.Weight)})
		case was.Weight != b.Weight:
			cs = append(cs, Change{Kind: WeightChanged, Pool: n.Name, Backend: b.URL,
				Settings: []Setting{{Key: "weight", Old: fmt.Sprint(was.Weight), New: fmt.Sprint(b.Weight)}},
				Message:  fmt.Sprintf("pool %s: backend %s weight %d -> %d", n.Name, b.URL, was.Weight, b.Weight)})
		}
	}
	if c, ok := hashMoves(o, n); ok {
		cs = append(cs, c)
	}
	return cs
}

// stickyResets are the changes of a pool's sticky that move pinned clients.
// o.Sticky is set.
func stickyResets(o, n *Pool) []Change {
	var cs []Change
	add := func(key, old, new, format string, args ...any) {
		cs = append(cs, Change{Kind: StickyReset, Pool: n.Name, Settings: []Setting{{Key: key, Old: old, New: new}},
			Message: fmt.Sprintf("pool %s: ", n.Name) + fmt.Sprintf(format, args...)})
	}
	was, now := o.Sticky, n.Sticky
	const moves = "every pinned client moves"
	switch {
	case now == nil:
		add("sticky", was.Type, "off", "sticky off (was %s): pins are no longer followed", was.Type)
		return cs
	case was.Type != now.Type:
		add("sticky.type", was.Type, now.Type, "sticky type %s -> %s: %s", was.Type, now.Type, moves)
		return cs
	}
	if was.CookieName != now.CookieName {
		effect := moves
		if now.Type == "app_cookie" {
			effect = "the session table starts empty, " + moves
		}
		add("sticky.cookie_name", was.CookieName, now.CookieName, "sticky cookie name %s -> %s: %s", was.CookieName, now.CookieName, effect)
	}
	if was.Secret != now.Secret {
		what := "changed"
		switch {
		case was.Secret == "":
			what = "set"
		case now.Secret == "":
			what = "removed"
		}
		add("sticky.secret", shown(was.Secret), shown(now.Secret), "sticky secret %s: %s (and every FULCRUM_SPLIT pin to this pool)", what, moves)
	}
	return cs
}

// hashMoves reports the keys a change of backends moves on a pool's
// consistent-hash table: the strategy's when the pool keeps the same hash
// strategy (a change of strategy is reported as such), else the sticky
// source_ip table's. Both are built by internal/balance exactly as the pool
// builds them, over every backend (health is not known here).
func hashMoves(o, n *Pool) (Change, bool) {
	what, keys := "", ""
	switch {
	case balance.HashStrategy(n.Strategy) && strategyOf(o) == strategyOf(n):
		what, keys = "hash backends changed", "keys move"
	case o.Sticky != nil && n.Sticky != nil && o.Sticky.Type == "source_ip" && n.Sticky.Type == "source_ip":
		what, keys = "sticky source_ip backends changed", "client addresses move to another backend"
	default:
		return Change{}, false
	}
	if slices.Equal(sortedBackends(o), sortedBackends(n)) {
		return Change{}, false
	}
	mv := balance.HashMoves(tableBackends(o), tableBackends(n))
	pct := 100 * mv.Fraction()
	m := &Moved{Percent: math.Round(pct*10) / 10, Slots: mv.Slots, OldSlots: mv.OldSlots}
	table := fmt.Sprintf("table of %d slots", mv.Slots)
	switch {
	case mv.Slots == 1:
		table = "one backend left, no table"
	case mv.Sampled:
		m.Sampled = mv.Of
		table = fmt.Sprintf("tables of %d and %d slots, %d keys sampled", mv.OldSlots, mv.Slots, mv.Of)
	}
	return Change{Kind: HashKeysMoved, Pool: n.Name, Moved: m,
		Message: fmt.Sprintf("pool %s: %s: %.1f%% of %s (%s)", n.Name, what, pct, keys, table)}, true
}

// sortedBackends is the set of (key, weight) a table depends on.
func sortedBackends(p *Pool) []Backend {
	bs := slices.Clone(p.Backends)
	for i := range bs {
		bs[i].URL = ""
	}
	slices.SortFunc(bs, func(a, b Backend) int { return strings.Compare(a.Key, b.Key) })
	return bs
}

// tableBackends are the backends as the pool hands them to its picker
// (internal/pool applyLocked): identity Key, KeyHash from it, full weight.
func tableBackends(p *Pool) []*backend.Backend {
	out := make([]*backend.Backend, len(p.Backends))
	for i, b := range p.Backends {
		out[i] = &backend.Backend{URL: b.URL, Key: b.Key, KeyHash: balance.HashString(b.Key),
			Weight: b.Weight, EffectiveWeight: b.Weight, Index: i}
	}
	return out
}
