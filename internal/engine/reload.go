package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"fulcrum/internal/config"
	"fulcrum/internal/events"
	"fulcrum/internal/proxy"
	"fulcrum/internal/route"
)

// errNoLoader is the answer to a reload of an engine started from flags.
var errNoLoader = errors.New("no configuration file to reload (started from flags)")

// Reload re-reads the configuration and applies it. An invalid file, one
// that changes what cannot change live, or one naming a listen address that
// cannot be bound leaves everything as it was. The summary is one line,
// followed by one "warning: ..." line per warning of the new configuration.
//
// What carries over: a listener whose listen_addr is unchanged keeps its
// socket and connections (its settings and routes are swapped); a pool
// whose name is unchanged is updated in place, so backends that stay keep
// their health, connections, sticky table and slow-start state. A new
// listen_addr is bound before anything changes; a listener no longer
// configured stops accepting and drains its connections within
// shutdown_timeout; a pool no longer configured gets no new requests and is
// stopped once the removed listeners have drained.
//
// Each reload is recorded as an event: its summary, or the errors.
func (e *Engine) Reload(ctx context.Context) (string, error) {
	summary, err := e.reload()
	// One line: a multi-line summary (warnings) or error list is joined.
	if err != nil {
		e.opt.Events.Add(events.KindReload, "", "", "rejected; running configuration unchanged: "+oneLine(err.Error()))
	} else {
		e.opt.Events.Add(events.KindReload, "", "", oneLine(summary))
	}
	return summary, err
}

func oneLine(s string) string { return strings.ReplaceAll(strings.TrimSpace(s), "\n", "; ") }

// loadNext loads the configuration a reload would apply and checks it
// against the running one cur: keys only a restart can change, and routes
// that compile (config.Load compiled them already). Reload and DryRun share
// it.
func (e *Engine) loadNext(cur *config.Config) (*config.Config, error) {
	next, err := e.opt.Loader()
	if err != nil {
		return nil, err
	}
	if err := fixedKeys(cur, next); err != nil {
		return nil, err
	}
	if err := compileRoutes(next); err != nil {
		return nil, err
	}
	return next, nil
}

func (e *Engine) reload() (string, error) {
	e.reloadMu.Lock()
	defer e.reloadMu.Unlock()
	if e.opt.Loader == nil {
		return "", errNoLoader
	}
	old := e.cur.Load()
	// Everything that can fail happens before anything changes: the file
	// loads, keeps what only a restart can change, its routes compile, the
	// tracing pipeline builds and new addresses bind.
	next, err := e.loadNext(old.cfg)
	if err != nil {
		e.reloadResult(false)
		return "", err
	}
	certs, err := loadCerts(next)
	if err != nil {
		e.certsFailed(old, err)
		e.reloadResult(false)
		return "", err
	}
	poolTLS, err := loadPoolTLS(next, prevPoolTLS(old))
	if err != nil {
		e.reloadResult(false)
		return "", err
	}
	tp, tpReplaced, err := e.nextTracing(next)
	if err != nil {
		e.reloadResult(false)
		return "", err
	}
	byAddr := map[string]*listener{}
	for _, l := range old.listeners {
		byAddr[l.listen] = l
	}
	run := &running{cfg: next, listeners: make([]*listener, len(next.Listeners))}
	var bound []*listener
	for i := range next.Listeners {
		lc := &next.Listeners[i]
		if l := byAddr[lc.Listen]; l != nil {
			run.listeners[i] = l
			delete(byAddr, lc.Listen)
			continue
		}
		ln, err := listenConfig.Listen(context.Background(), "tcp", lc.Listen)
		if err != nil {
			for _, b := range bound {
				b.ln.Close()
			}
			if tp != e.tracing {
				e.stopTracing(context.Background(), tp)
			}
			e.reloadResult(false)
			return "", bindError(next, i, err)
		}
		l := &listener{listen: lc.Listen, ln: ln}
		bound = append(bound, l)
		run.listeners[i] = l
	}

	// Apply. Pools first, so that routes built next see their new settings.
	oldPools := map[string]*upstream{}
	for _, u := range old.pools {
		oldPools[u.up.Name] = u
	}
	ups := map[string]*proxy.Upstream{}
	var added []*upstream
	for i := range next.Pools {
		pc := &next.Pools[i]
		u := oldPools[pc.Name]
		if u != nil {
			u.pool.Update(pc, pc.IdleTimeout, poolTLS[i].config())
			u.tls = poolTLS[i]
			u.up.Refresh()
			delete(oldPools, pc.Name)
		} else {
			u = e.newUpstream(pc, poolTLS[i])
			added = append(added, u)
		}
		run.pools = append(run.pools, u)
		ups[pc.Name] = u.up
	}
	for _, u := range added {
		u.pool.Start(e.ctx)
	}
	oldTP := e.tracing
	e.tracing = tp
	for i, l := range run.listeners {
		lc := &next.Listeners[i]
		rt, err := proxy.NewRouting(lc.Name, lc.Routes, ups, e.opt.Metrics)
		if err != nil {
			// Unreachable: the routes compiled above and every pool they
			// name exists (config.Load checked).
			panic(fmt.Sprintf("engine: routes of listener %s: %v", lc.Name, err))
		}
		e.applyTLS(l, lc, certs[i])
		if l.srv == nil {
			l.srv = proxy.New(e.settings(next, lc, l), rt, e.proxyOptions())
			e.serve(l)
		} else {
			l.srv.Update(e.settings(next, lc, l), rt)
		}
	}
	e.cur.Store(run)
	if tpReplaced {
		// Requests that started under the old pipeline end their spans in
		// it; it flushes them when it shuts down.
		e.retireTracing(oldTP)
	}
	e.forgetRoutes(old.cfg, next)
	// What is no longer configured drains in the background.
	var gone []*listener
	for _, l := range byAddr {
		gone = append(gone, l)
	}
	var retired []*upstream
	for _, u := range oldPools {
		retired = append(retired, u)
	}
	if len(gone) > 0 || len(retired) > 0 {
		e.draining.Add(1)
		go e.retire(gone, retired, next)
	}

	if e.opt.LevelVar != nil {
		e.opt.LevelVar.Set(next.LogLevel)
	}
	e.reloadResult(true)
	summary := reloadSummary(next, len(bound), len(gone), len(added), len(retired))
	e.log.Info("configuration reloaded", "summary", summary)
	e.logWarnings(next)
	for _, w := range next.Warnings {
		summary += "\nwarning: " + w.String()
	}
	return summary, nil
}

// compileRoutes checks that every listener's routes compile.
func compileRoutes(cfg *config.Config) error {
	for i := range cfg.Listeners {
		if _, err := route.Compile(cfg.Listeners[i].Routes); err != nil {
			return fmt.Errorf("listeners[%d] (%s): %w", i, cfg.Listeners[i].Name, err)
		}
	}
	return nil
}

// retire stops the listeners a reload removed, lets their connections
// finish within shutdown_timeout, then stops the pools the reload removed:
// requests already forwarded to them finish first, since a removed pool
// is no longer in any route and its in-flight requests hold their
// connections.
func (e *Engine) retire(ls []*listener, us []*upstream, cfg *config.Config) {
	defer e.draining.Done()
	ctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	for _, l := range ls {
		if err := l.srv.Shutdown(ctx); err != nil {
			e.log.Warn("removed listener did not drain in time", "listen", l.listen, "err", err)
		}
		<-l.done
	}
	closeTLS(ls)
	for _, u := range us {
		u.pool.Drain(ctx)
		u.pool.Stop()
		u.pool.ForgetMetrics()
		e.log.Info("pool removed", "pool", u.up.Name)
	}
}

// forgetRoutes deletes the request series of route labels the old
// configuration had and the new one has not.
func (e *Engine) forgetRoutes(old, next *config.Config) {
	if e.opt.Metrics == nil {
		return
	}
	keep := map[string]bool{}
	for _, l := range next.Listeners {
		for i := range l.Routes {
			keep[route.Label(l.Name, i, &l.Routes[i])] = true
		}
	}
	for _, l := range old.Listeners {
		for i := range l.Routes {
			if lb := route.Label(l.Name, i, &l.Routes[i]); !keep[lb] {
				e.opt.Metrics.ForgetRoute(lb)
			}
		}
	}
}

// fixedKeys refuses a configuration that changes what only a restart can.
func fixedKeys(cur, next *config.Config) error {
	// The admin listener stays bound to the address it started on, so a file
	// naming another one is refused, never half-applied. This is also what
	// keeps the rule "a non-loopback admin address needs a token" true of the
	// bound listener: config.Load checked that rule against next.AdminAddr,
	// which is now known to be the bound address. Accepting a loopback
	// admin_addr without a token while 0.0.0.0 stayed bound would switch
	// authentication off on a public listener.
	if next.AdminAddr != cur.AdminAddr {
		return fixedOnReload("admin_addr", cur.AdminAddr, next.AdminAddr)
	}
	// The log handler (text or JSON) is built once at start-up: refuse a
	// change rather than accept it and keep writing the old format.
	if next.LogFormat != cur.LogFormat {
		return fixedOnReload("log_format", cur.LogFormat, next.LogFormat)
	}
	return nil
}

// reloadSummary is the one-line result of a reload.
func reloadSummary(cfg *config.Config, boundN, goneN, addedN, retiredN int) string {
	if cfg.Flat {
		p := &cfg.Pools[0]
		s := fmt.Sprintf("reloaded: %d backends, strategy %s", len(p.Backends), p.Strategy)
		if boundN > 0 {
			s += ", listening on " + cfg.Listeners[0].Listen
		}
		return s
	}
	routes, backends := 0, 0
	for i := range cfg.Listeners {
		routes += len(cfg.Listeners[i].Routes)
	}
	for i := range cfg.Pools {
		backends += len(cfg.Pools[i].Backends)
	}
	s := fmt.Sprintf("reloaded: %d listeners, %d pools, %d routes, %d backends", len(cfg.Listeners), len(cfg.Pools), routes, backends)
	var ch []string
	for _, c := range []struct {
		n    int
		what string
	}{{boundN, "listeners bound"}, {goneN, "listeners removed"}, {addedN, "pools added"}, {retiredN, "pools removed"}} {
		if c.n > 0 {
			ch = append(ch, fmt.Sprintf("%d %s", c.n, c.what))
		}
	}
	if len(ch) > 0 {
		s += " (" + strings.Join(ch, ", ") + ")"
	}
	return s
}

// fixedOnReload is the refusal of a reload that changes key, which only a
// restart can change.
func fixedOnReload(key, running, file string) error {
	return fmt.Errorf("%s: cannot change on reload (running %q, file says %q); restart fulcrum", key, running, file)
}

func (e *Engine) reloadResult(ok bool) {
	if e.opt.Metrics != nil {
		e.opt.Metrics.Reload(ok)
	}
}
