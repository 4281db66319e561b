// Package engine compiles a config into running services (listener + pool),
// owns hot reload (build beside the running config, swap, carry backend state
// over) and graceful shutdown. It implements admin.Controller.
package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"fulcrum/internal/config"
	"fulcrum/internal/metrics"
	"fulcrum/internal/pool"
	"fulcrum/internal/proxy"
)

// Loader re-reads the configuration (for reload).
type Loader func() (*config.Config, error)

// Options are the engine's collaborators.
type Options struct {
	Logger   *slog.Logger
	Metrics  *metrics.Metrics
	Loader   Loader
	LevelVar *slog.LevelVar
}

// listenConfig turns TCP keep-alive probes off on client connections:
// idle_timeout already closes idle ones, and enabling the probes costs four
// setsockopt calls per accepted connection. (Go sets TCP_NODELAY by default.)
var listenConfig = net.ListenConfig{KeepAlive: -1}

type service struct {
	name   string
	listen string
	ln     net.Listener
	srv    *proxy.Server
	pool   *pool.Pool
	done   chan error
}

// Engine runs the services of one config.
type Engine struct {
	opt      Options
	log      *slog.Logger
	cfg      atomic.Pointer[config.Config]
	services []*service
	reloadMu sync.Mutex
	ctx      context.Context
	cancel   context.CancelFunc
}

// New binds every listener of cfg (so a busy port fails start-up before
// anything serves) and builds the pools. Nothing runs until Start.
func New(cfg *config.Config, opt Options) (*Engine, error) {
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	e := &Engine{opt: opt, log: opt.Logger}
	e.cfg.Store(cfg)
	e.logWarnings(cfg)
	for i, sc := range cfg.Listeners {
		ln, err := listenConfig.Listen(context.Background(), "tcp", sc.Listen)
		if err != nil {
			e.closeListeners()
			return nil, fmt.Errorf("listen_addr %q: %w", sc.Listen, err)
		}
		pc := &cfg.Pools[i]
		p := pool.New(pc, pc.IdleTimeout, pool.Options{Logger: opt.Logger, Metrics: opt.Metrics})
		srv := proxy.New(settingsOf(cfg, &sc), p, proxy.Options{Logger: opt.Logger, Metrics: opt.Metrics})
		e.services = append(e.services, &service{name: sc.Name, listen: sc.Listen, ln: ln, srv: srv, pool: p, done: make(chan error, 1)})
	}
	return e, nil
}

func settingsOf(cfg *config.Config, sc *config.Listener) *proxy.Settings {
	return &proxy.Settings{
		Limits: sc.Limits, TrustedProxies: sc.TrustedProxies, AccessLog: cfg.AccessLog, RateLimit: sc.RateLimit,
	}
}

func (e *Engine) closeListeners() {
	for _, s := range e.services {
		s.ln.Close()
	}
}

// Addr returns the bound address of the first service (useful with port 0).
func (e *Engine) Addr() net.Addr { return e.services[0].ln.Addr() }

// Start starts health checks and serving.
func (e *Engine) Start(ctx context.Context) {
	e.ctx, e.cancel = context.WithCancel(ctx)
	for _, s := range e.services {
		s.pool.Start(e.ctx)
		go func(s *service) { s.done <- s.srv.Serve(s.ln) }(s)
	}
}

// Config returns the running configuration.
func (e *Engine) Config() *config.Config { return e.cfg.Load() }

// Reload re-reads the configuration and applies it. An invalid file (or one
// that changes what cannot change live) leaves everything as it was. The
// summary is one line, followed by one "warning: ..." line per warning of
// the new configuration.
func (e *Engine) Reload(ctx context.Context) (string, error) {
	e.reloadMu.Lock()
	defer e.reloadMu.Unlock()
	if e.opt.Loader == nil {
		return "", errors.New("no configuration file to reload (started from flags)")
	}
	next, err := e.opt.Loader()
	if err != nil {
		e.reloadResult(false)
		return "", err
	}
	cur := e.cfg.Load()
	if len(next.Listeners) != len(e.services) {
		e.reloadResult(false)
		return "", errors.New("the number of services cannot change on reload; restart fulcrum")
	}
	for i, sc := range next.Listeners {
		if sc.Listen != e.services[i].listen {
			e.reloadResult(false)
			return "", fixedOnReload("listen_addr", e.services[i].listen, sc.Listen)
		}
	}
	// The admin listener stays bound to the address it started on, so a file
	// naming another one is refused, never half-applied. This is also what
	// keeps the rule "a non-loopback admin address needs a token" true of the
	// bound listener: config.Load checked that rule against next.AdminAddr,
	// which is now known to be the bound address. Accepting a loopback
	// admin_addr without a token while 0.0.0.0 stayed bound would switch
	// authentication off on a public listener.
	if next.AdminAddr != cur.AdminAddr {
		e.reloadResult(false)
		return "", fixedOnReload("admin_addr", cur.AdminAddr, next.AdminAddr)
	}
	// The log handler (text or JSON) is built once at start-up: refuse a
	// change rather than accept it and keep writing the old format.
	if next.LogFormat != cur.LogFormat {
		e.reloadResult(false)
		return "", fixedOnReload("log_format", cur.LogFormat, next.LogFormat)
	}
	// Everything is valid: apply.
	for i := range next.Listeners {
		sc := &next.Listeners[i]
		s := e.services[i]
		s.pool.Update(&next.Pools[i], next.Pools[i].IdleTimeout)
		s.srv.Update(settingsOf(next, sc), s.pool)
	}
	if e.opt.LevelVar != nil {
		e.opt.LevelVar.Set(next.LogLevel)
	}
	e.cfg.Store(next)
	e.reloadResult(true)
	var summary string
	for _, pc := range next.Pools {
		summary += fmt.Sprintf("reloaded: %d backends, strategy %s", len(pc.Backends), pc.Strategy)
	}
	e.log.Info("configuration reloaded", "summary", summary)
	e.logWarnings(next)
	for _, w := range next.Warnings {
		summary += "\nwarning: " + w.String()
	}
	return summary, nil
}

// fixedOnReload is the refusal of a reload that changes key, which only a
// restart can change.
func fixedOnReload(key, running, file string) error {
	return fmt.Errorf("%s: cannot change on reload (running %q, file says %q); restart fulcrum", key, running, file)
}

// logWarnings logs each of cfg's warnings (things that load but are probably
// mistakes) on a line of its own.
func (e *Engine) logWarnings(cfg *config.Config) {
	for _, w := range cfg.Warnings {
		e.log.Warn("configuration warning", "warning", w.String())
	}
}

func (e *Engine) reloadResult(ok bool) {
	if e.opt.Metrics != nil {
		e.opt.Metrics.Reload(ok)
	}
}

// AdminToken is the running configuration's admin token (admin.TokenSource).
func (e *Engine) AdminToken() string { return e.cfg.Load().AdminToken }

// Backends lists the backends of every service.
func (e *Engine) Backends() []pool.Status {
	var out []pool.Status
	for _, s := range e.services {
		out = append(out, s.pool.Statuses()...)
	}
	return out
}

// BackendSamples implements metrics.BackendSource.
func (e *Engine) BackendSamples(dst []metrics.BackendSample) []metrics.BackendSample {
	for _, s := range e.services {
		dst = s.pool.BackendSamples(dst)
	}
	return dst
}

// Shutdown stops accepting, lets in-flight requests finish until ctx ends,
// then stops health checks and closes upstream connections.
func (e *Engine) Shutdown(ctx context.Context) error {
	if e.cancel == nil {
		// Never started (e.g. the admin listener failed to bind): nothing
		// serves, so no serve result will come; release what New bound.
		e.closeListeners()
		for _, s := range e.services {
			s.pool.Stop()
		}
		return nil
	}
	var wg sync.WaitGroup
	errs := make([]error, len(e.services))
	for i, s := range e.services {
		wg.Add(1)
		go func(i int, s *service) {
			defer wg.Done()
			errs[i] = s.srv.Shutdown(ctx)
		}(i, s)
	}
	wg.Wait()
	for _, s := range e.services {
		s.pool.Stop()
		select {
		case <-s.done:
		case <-time.After(time.Second):
		}
	}
	if e.cancel != nil {
		e.cancel()
	}
	return errors.Join(errs...)
}

// Done returns a channel that receives a serve error if a listener fails.
func (e *Engine) Done() <-chan error { return e.services[0].done }
