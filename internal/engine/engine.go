// Package engine compiles a config into running parts (listeners, pools and
// the routes between them), owns hot reload (build beside the running
// config, swap, carry pool state over) and graceful shutdown. It implements
// admin.Controller.
package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"fulcrum/internal/config"
	"fulcrum/internal/events"
	"fulcrum/internal/metrics"
	"fulcrum/internal/pool"
	"fulcrum/internal/proxy"
	"fulcrum/internal/tracing"
)

// Loader re-reads the configuration (for reload).
type Loader func() (*config.Config, error)

// Options are the engine's collaborators.
type Options struct {
	Logger   *slog.Logger
	Metrics  *metrics.Metrics
	Loader   Loader
	LevelVar *slog.LevelVar
	// Events receives backend transitions, admin actions and reloads; nil
	// means a log of events.Capacity events of the engine's own.
	Events *events.Log
	// AccessLog receives access log lines (see proxy.Options); default os.Stderr.
	AccessLog io.Writer
	// Tracing tunes the tracing pipeline (tests shorten its batch timeout).
	Tracing tracing.Options
	// ACMERenewCheck overrides how often ACME certificates are checked for
	// renewal (tests); 0 = acme.RenewCheckInterval.
	ACMERenewCheck time.Duration
}

// listenConfig turns TCP keep-alive probes off on client connections:
// idle_timeout already closes idle ones, and enabling the probes costs four
// setsockopt calls per accepted connection. (Go sets TCP_NODELAY by default.)
var listenConfig = net.ListenConfig{KeepAlive: -1}

// listener is one bound listen address and the server accepting on it. It
// is kept across reloads while a listener of the new configuration names
// the same listen_addr (its name may change).
type listener struct {
	listen string // listen_addr as configured
	ln     net.Listener
	srv    *proxy.Server
	tls    *proxy.TLS    // nil: plain HTTP
	done   chan struct{} // closed when Serve returned
}

// upstream is one configured pool, kept across reloads by name.
type upstream struct {
	pool *pool.Pool
	up   *proxy.Upstream
	tls  *clientTLS // nil: the pool has no https backends
}

// running is what serves now: an immutable value swapped by reload, so the
// admin API reads it without a lock.
type running struct {
	cfg       *config.Config
	listeners []*listener // in configuration order, like cfg.Listeners
	pools     []*upstream // in configuration order, like cfg.Pools
}

// Engine runs the listeners and pools of one config.
type Engine struct {
	opt      Options
	log      *slog.Logger
	cur      atomic.Pointer[running]
	reloadMu sync.Mutex
	ctx      context.Context
	cancel   context.CancelFunc
	// failed receives the first serve error of any listener.
	failed chan error
	// draining counts listeners and pools a reload removed that are still
	// finishing their requests; Shutdown waits for them.
	draining sync.WaitGroup
	// tracing is the running tracing pipeline, nil when tracing is off;
	// replaced under reloadMu.
	tracing *tracing.Provider
}

// New binds every listener of cfg (so a busy port fails start-up before
// anything serves) and builds the pools. Nothing runs until Start.
func New(cfg *config.Config, opt Options) (*Engine, error) {
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	if opt.Events == nil {
		opt.Events = events.New(events.Capacity, nil)
	}
	e := &Engine{opt: opt, log: opt.Logger, failed: make(chan error, 1)}
	e.logWarnings(cfg)
	if cfg.Tracing != nil {
		p, err := tracing.New(cfg.Tracing, opt.Tracing)
		if err != nil {
			return nil, err
		}
		e.tracing = p
	}
	certs, err := loadCerts(cfg)
	if err != nil {
		e.stopTracing(context.Background(), e.tracing)
		return nil, err
	}
	poolTLS, err := loadPoolTLS(cfg, nil)
	if err != nil {
		e.stopTracing(context.Background(), e.tracing)
		return nil, err
	}
	run := &running{cfg: cfg}
	for i := range cfg.Listeners {
		lc := &cfg.Listeners[i]
		ln, err := listenConfig.Listen(context.Background(), "tcp", lc.Listen)
		if err != nil {
			for _, l := range run.listeners {
				l.ln.Close()
			}
			e.stopTracing(context.Background(), e.tracing)
			return nil, bindError(cfg, i, err)
		}
		run.listeners = append(run.listeners, &listener{listen: lc.Listen, ln: ln})
	}
	ups := map[string]*proxy.Upstream{}
	for i := range cfg.Pools {
		u := e.newUpstream(&cfg.Pools[i], poolTLS[i])
		run.pools = append(run.pools, u)
		ups[u.up.Name] = u.up
	}
	for i, l := range run.listeners {
		lc := &cfg.Listeners[i]
		rt, err := proxy.NewRouting(lc.Name, lc.Routes, ups, opt.Metrics)
		if err != nil {
			for _, l := range run.listeners {
				l.ln.Close()
			}
			closeTLS(run.listeners)
			e.stopTracing(context.Background(), e.tracing)
			return nil, fmt.Errorf("listeners[%d] (%s): %w", i, lc.Name, err)
		}
		e.applyTLS(l, lc, certs[i])
		l.srv = proxy.New(e.settings(cfg, lc, l), rt, e.proxyOptions())
	}
	e.cur.Store(run)
	return e, nil
}

// bindError names the listener whose address could not be bound.
func bindError(cfg *config.Config, i int, err error) error {
	lc := &cfg.Listeners[i]
	if cfg.Flat {
		return fmt.Errorf("listen_addr %q: %w", lc.Listen, err)
	}
	return fmt.Errorf("listeners[%d] (%s): listen_addr %q: %w", i, lc.Name, lc.Listen, err)
}

func (e *Engine) newUpstream(pc *config.Pool, ct *clientTLS) *upstream {
	p := pool.New(pc, pc.IdleTimeout, ct.config(), pool.Options{Logger: e.opt.Logger, Metrics: e.opt.Metrics, Events: e.opt.Events})
	return &upstream{pool: p, up: proxy.NewUpstream(pc.Name, p), tls: ct}
}

func (e *Engine) proxyOptions() proxy.Options {
	return proxy.Options{Logger: e.opt.Logger, Metrics: e.opt.Metrics, AccessLog: e.opt.AccessLog}
}

// Addr returns the bound address of the first listener (useful with port 0).
func (e *Engine) Addr() net.Addr { return e.cur.Load().listeners[0].ln.Addr() }

// Start starts health checks and serving.
func (e *Engine) Start(ctx context.Context) {
	e.ctx, e.cancel = context.WithCancel(ctx)
	run := e.cur.Load()
	for _, u := range run.pools {
		u.pool.Start(e.ctx)
	}
	for _, l := range run.listeners {
		e.serve(l)
	}
}

// serve starts accepting on l.
func (e *Engine) serve(l *listener) {
	l.done = make(chan struct{})
	go func() {
		defer close(l.done)
		if err := l.srv.Serve(l.ln); err != nil {
			select {
			case e.failed <- fmt.Errorf("listener %s: %w", l.listen, err):
			default:
			}
		}
	}()
}

// Config returns the running configuration.
func (e *Engine) Config() *config.Config { return e.cur.Load().cfg }

// logWarnings logs each of cfg's warnings (things that load but are probably
// mistakes) on a line of its own.
func (e *Engine) logWarnings(cfg *config.Config) {
	for _, w := range cfg.Warnings {
		e.log.Warn("configuration warning", "warning", w.String())
	}
}

// AdminToken is the running configuration's admin token (admin.TokenSource).
func (e *Engine) AdminToken() string { return e.cur.Load().cfg.AdminToken }

// Backends lists the backends of every pool, pool by pool.
func (e *Engine) Backends() []pool.Status {
	var out []pool.Status
	for _, u := range e.cur.Load().pools {
		out = append(out, u.pool.Statuses()...)
	}
	return out
}

// Listeners returns the running listeners with their routes (for
// /admin/routes).
func (e *Engine) Listeners() []config.Listener { return e.cur.Load().cfg.Listeners }

// BackendSamples implements metrics.BackendSource.
func (e *Engine) BackendSamples(dst []metrics.BackendSample) []metrics.BackendSample {
	for _, u := range e.cur.Load().pools {
		dst = u.pool.BackendSamples(dst)
	}
	return dst
}

// Shutdown stops accepting, lets in-flight requests finish until ctx ends,
// then stops health checks and closes upstream connections.
func (e *Engine) Shutdown(ctx context.Context) error {
	run := e.cur.Load()
	if e.cancel == nil {
		// Never started (e.g. the admin listener failed to bind): nothing
		// serves, so no serve result will come; release what New bound.
		for _, l := range run.listeners {
			l.ln.Close()
		}
		for _, u := range run.pools {
			u.pool.Stop()
		}
		closeTLS(run.listeners)
		e.stopTracing(ctx, e.tracing)
		return nil
	}
	// Hold off reloads: none may start a listener or pool now.
	e.reloadMu.Lock()
	defer e.reloadMu.Unlock()
	var wg sync.WaitGroup
	errs := make([]error, len(run.listeners))
	for i, l := range run.listeners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = l.srv.Shutdown(ctx)
		}()
	}
	wg.Wait()
	e.draining.Wait()
	for _, u := range run.pools {
		u.pool.Stop()
	}
	for _, l := range run.listeners {
		select {
		case <-l.done:
		case <-time.After(time.Second):
		}
	}
	closeTLS(run.listeners)
	// Every request has finished (or been cut off): export their spans.
	e.stopTracing(ctx, e.tracing)
	e.cancel()
	return errors.Join(errs...)
}

// Done returns a channel that receives a serve error if a listener fails.
func (e *Engine) Done() <-chan error { return e.failed }
