package config

import (
	"errors"
	"fmt"
	"slices"

	"fulcrum/internal/route"
)

// poolKeys are the per-pool keys; at the top level of the full form each is
// the default of every pool that does not set it.
var poolKeys = []string{
	"strategy", "hash_key", "health_check", "health_check_interval", "max_fail_count", "passive",
	"panic_threshold", "retries", "retry_buffer", "connect_timeout", "response_header_timeout",
	"idle_timeout", "max_connections", "queue_timeout", "slow_start", "sticky",
}

// listenerKeys are the per-listener keys (besides name, listen_addr and
// routes); at the top level of the full form each is a default.
var listenerKeys = []string{
	"trusted_proxies", "read_header_timeout", "read_timeout", "write_timeout", "idle_timeout",
	"max_header_bytes", "max_body_bytes", "max_conns", "max_conns_per_ip", "rate_limit", "request_id",
}

// inherit returns a cursor over the object v at path in which each of keys
// that v lacks but top has is taken from top, with its top-level path.
func inherit(c *checker, path string, v *value, top *object, keys []string) *object {
	if v == nil || v.kind != kindObject {
		return c.object(path, v)
	}
	m := &value{kind: kindObject, keys: slices.Clone(v.keys), vals: slices.Clone(v.vals)}
	origin := map[string]string{}
	for _, k := range keys {
		if v.lookup(k) != nil {
			continue
		}
		if tv := top.v.lookup(k); tv != nil {
			m.keys = append(m.keys, k)
			m.vals = append(m.vals, tv)
			origin[k] = k
		}
	}
	o := c.object(path, m)
	o.origin = origin
	return o
}

// validName reports whether s may name a pool or listener.
func validName(s string) error {
	if s == "" {
		return errors.New("must not be empty")
	}
	if s == "none" {
		return errors.New(`"none" is reserved (it is the metrics label of requests no pool served)`)
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		if !(b == '-' || b == '_' || b == '.' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9') {
			return fmt.Errorf("%q: use letters, digits, '-', '_' and '.'", clip(s))
		}
	}
	return nil
}

// buildFull reads the full form: pools, listeners and their routes.
func buildFull(c *checker, top *object) *Config {
	for _, k := range []string{"listen_addr", "backends"} {
		if top.present(k) {
			c.add(k, "not allowed at the top level with pools and listeners; set listen_addr on each listener and backends on each pool")
		}
		top.take(k)
	}
	// The top-level defaults are read through each pool and listener;
	// here they are only marked as known keys.
	for _, k := range append(slices.Clone(poolKeys), listenerKeys...) {
		top.take(k)
	}
	cfg := &Config{}
	pv := top.take("pools")
	switch {
	case pv == nil:
		c.add("pools", "required with listeners: a map of pool name to pool")
	case pv.kind != kindObject:
		c.typeProblem("pools", "an object (pool name to pool)", pv)
	case len(pv.keys) == 0:
		c.add("pools", "must name at least one pool")
	default:
		for i, name := range pv.keys {
			path := childPath("pools", name)
			if err := validName(name); err != nil {
				c.add(path, "pool name %v", err)
			}
			o := inherit(c, path, pv.vals[i], top, poolKeys)
			if o.v == nil {
				continue
			}
			p := buildPool(c, o, name)
			p.TLS = buildPoolTLS(c, o, "tls", p.Backends) // not inherited: "tls" at the top is a listener's in the flat form
			cfg.Pools = append(cfg.Pools, p)
			o.done()
		}
	}
	lv := top.take("listeners")
	switch {
	case lv == nil:
		c.add("listeners", "required with pools: a list of listeners")
	case lv.kind != kindList:
		c.typeProblem("listeners", "a list of listeners", lv)
	case len(lv.items) == 0:
		c.add("listeners", "must have at least one listener")
	default:
		names := map[string]int{}
		for i, item := range lv.items {
			path := indexPath("listeners", i)
			o := inherit(c, path, item, top, listenerKeys)
			if o.v == nil {
				continue
			}
			name, _ := o.str("name", "")
			if !o.present("name") {
				c.add(o.at("name"), "required")
			} else if err := validName(name); err != nil {
				c.add(o.at("name"), "listener name %v", err)
			} else if j, dup := names[name]; dup {
				c.add(o.at("name"), "%q is already the name of listeners[%d]", name, j)
			} else {
				names[name] = i
			}
			if !o.present("listen_addr") {
				c.add(o.at("listen_addr"), `required (e.g. ":8080")`)
			}
			l := buildListener(c, o, name)
			for j := 0; j < i && j < len(cfg.Listeners); j++ {
				if l.Listen != "" && (l.Listen == cfg.Listeners[j].Listen || sameListener(l.Listen, cfg.Listeners[j].Listen)) {
					c.add(o.at("listen_addr"), "%q conflicts with listeners[%d].listen_addr %q", clip(l.Listen), j, clip(cfg.Listeners[j].Listen))
				}
			}
			l.Routes = buildRoutes(c, o.at("routes"), o.take("routes"))
			o.done()
			cfg.Listeners = append(cfg.Listeners, l)
		}
	}
	checkPoolRefs(c, cfg)
	return cfg
}

// checkPoolRefs reports routes naming a pool that does not exist, and warns
// about pools no route uses.
func checkPoolRefs(c *checker, cfg *Config) {
	var names []string
	for _, p := range cfg.Pools {
		names = append(names, p.Name)
	}
	used := map[string]bool{}
	ref := func(path, name string) {
		used[name] = true
		if name == "" || slices.Contains(names, name) {
			return
		}
		if s := suggest(name, names); s != "" {
			c.add(path, "unknown pool %q (did you mean %q?)", clip(name), s)
		} else {
			c.add(path, "unknown pool %q (pools: %s)", clip(name), quoteList(names))
		}
	}
	for i, l := range cfg.Listeners {
		for j, r := range l.Routes {
			base := fmt.Sprintf("listeners[%d].routes[%d]", i, j)
			if r.Pool != "" {
				ref(base+".pool", r.Pool)
			}
			for k, t := range r.Split {
				ref(fmt.Sprintf("%s.split[%d].pool", base, k), t.Pool)
			}
		}
	}
	if len(cfg.Listeners) == 0 {
		return
	}
	for _, p := range cfg.Pools {
		if !used[p.Name] {
			c.warn(childPath("pools", p.Name), "no route uses this pool")
		}
	}
}

// buildRoutes reads a listener's routes and compiles them, reporting
// route.Compile's problems at their path.
func buildRoutes(c *checker, path string, v *value) []route.Spec {
	switch {
	case v == nil:
		c.add(path, "required: at least one route (a route without match matches every request)")
		return nil
	case v.kind != kindList:
		c.typeProblem(path, "a list of routes", v)
		return nil
	case len(v.items) == 0:
		c.add(path, "must have at least one route")
		return nil
	}
	specs := make([]route.Spec, 0, len(v.items))
	shaky := map[int]bool{} // routes with shape problems: Compile's view of them would mislead
	for i, item := range v.items {
		before := len(c.problems)
		specs = append(specs, buildRoute(c, indexPath(path, i), item))
		shaky[i] = len(c.problems) > before
	}
	if _, err := route.Compile(specs); err != nil {
		var errs []error
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			errs = j.Unwrap()
		} else {
			errs = []error{err}
		}
		for _, e := range errs {
			var re *route.Error
			if errors.As(e, &re) {
				if shaky[re.Route] {
					continue
				}
				p := indexPath(path, re.Route)
				if re.Field != "" {
					p += "." + re.Field
				}
				c.add(p, "%v", re.Err)
			} else {
				c.add(path, "%v", e)
			}
		}
	}
	return specs
}
