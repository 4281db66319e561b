package engine

import (
	"context"
	"fulcrum/internal/acme"
	"time"

	"fulcrum/internal/config"
	"fulcrum/internal/proxy"
	"fulcrum/internal/tracing"
)

// tracingFlushTimeout bounds how long shutting a tracing pipeline down
// waits for its last spans to be exported.
const tracingFlushTimeout = 5 * time.Second

// settings returns the proxy settings of listener lc of cfg, with the
// listener's tracer when tracing is on and l's TLS side. Callers hold
// reloadMu (or run in New).
func (e *Engine) settings(cfg *config.Config, lc *config.Listener, l *listener) *proxy.Settings {
	s := proxy.SettingsOf(cfg, lc)
	s.TLS = l.tls
	if l.tls == nil && hasHTTP01(cfg) {
		s.ACME = acme.HTTPChallenge
	}
	if e.tracing != nil {
		s.Tracer = e.tracing.Tracer(lc.Name)
	}
	return s
}

// nextTracing returns the tracing pipeline for cfg: the running one when
// its tracing block is unchanged, a new one when it changed, nil when it
// is gone. replaced reports whether the running one is to be shut down.
func (e *Engine) nextTracing(cfg *config.Config) (p *tracing.Provider, replaced bool, err error) {
	cur := e.tracing
	if cur != nil && cfg.Tracing != nil && cur.Config() == *cfg.Tracing {
		return cur, false, nil
	}
	if cfg.Tracing != nil {
		if p, err = tracing.New(cfg.Tracing, e.opt.Tracing); err != nil {
			return nil, false, err
		}
	}
	return p, cur != nil, nil
}

// retireTracing shuts a replaced pipeline down in the background, flushing
// the spans of requests that finished under it; Shutdown waits for it.
func (e *Engine) retireTracing(p *tracing.Provider) {
	e.draining.Add(1)
	go func() {
		defer e.draining.Done()
		e.stopTracing(context.Background(), p)
	}()
}

// stopTracing flushes and stops p within tracingFlushTimeout of now (also
// when ctx has already ended: spans of finished requests are still sent).
func (e *Engine) stopTracing(ctx context.Context, p *tracing.Provider) {
	if p == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), tracingFlushTimeout)
	defer cancel()
	if err := p.Shutdown(ctx); err != nil {
		e.log.Warn("tracing: exporting the last spans failed", "err", err)
	}
}
