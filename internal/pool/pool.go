// Package pool owns one group of backends: it takes health transitions,
// passive ejections, slow-start ramps and config changes serially on the slow
// path, and publishes an immutable Snapshot (picker + members) that the
// request path loads with one atomic read.
package pool

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"log/slog"
	"maps"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"fulcrum/internal/backend"
	"fulcrum/internal/balance"
	"fulcrum/internal/config"
	"fulcrum/internal/events"
	"fulcrum/internal/health"
	"fulcrum/internal/metrics"
	"fulcrum/internal/upstream"
	"fulcrum/internal/window"
)

// Member is one backend with everything the request path needs for it.
type Member struct {
	Backend *backend.Backend
	State   *backend.State
	Conns   *upstream.Pool
	Metrics *metrics.Backend // set when the Member is built, never changed
	target  *health.Target
	cfg     config.Backend
	tls     *tls.Config // an https backend's, from upstream.ForBackend; nil for http

	// Window is the backend's last minute of traffic, kept like State.
	Window *window.Ring
}

// Snapshot is an immutable view of the pool. Members is indexed by
// Backend.Index; All lists every member in configured order.
type Snapshot struct {
	Picker  balance.Picker
	Members []*Member
	// Usable is the number of backends that pass health checks and are not ejected.
	Usable int
	// Panic is set when fewer than panic_threshold percent are usable and
	// traffic is spread over all backends.
	Panic bool
	Cfg   *config.Pool
	// ByStickyID maps a backend's sticky-cookie ID to its index in Members;
	// StickyIDs is the reverse.
	ByStickyID map[uint64]int
	StickyIDs  []uint64
	// SourceIP is a consistent-hash picker over the usable backends, built
	// only for sticky type source_ip.
	SourceIP balance.Picker
}

// StickyID is the identifier a sticky cookie carries for a backend: a hash of
// its key, so the cookie does not reveal the address, is the same on every
// instance sharing the config and survives reloads.
func StickyID(key string) uint64 { return balance.HashString("fulcrum-sticky\x00" + key) }

// StickyIDKeyed is StickyID keyed with a secret (HMAC-SHA256, first 64
// bits), so that nobody without the secret can map cookie values to guessed
// backend addresses. An empty secret gives StickyID.
func StickyIDKeyed(secret, key string) uint64 {
	if secret == "" {
		return StickyID(key)
	}
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(key))
	return binary.BigEndian.Uint64(m.Sum(nil))
}

// Member returns the member a picked backend belongs to.
func (s *Snapshot) Member(b *backend.Backend) *Member { return s.Members[b.Index] }

// Options are the pool's collaborators.
type Options struct {
	Logger  *slog.Logger
	Metrics *metrics.Metrics
	Rand    balance.Rand
	// Clock is used for slow start and ejections; nil means the real clock.
	Clock health.Clock
	// Events records backend transitions, ejections, panic mode and admin
	// actions; nil records nothing.
	Events *events.Log
}

// Pool is one backend group. Create with New, then Start; Stop releases
// everything it started.
type Pool struct {
	opt  Options
	snap atomic.Pointer[Snapshot]

	mu      sync.Mutex // guards the fields below; slow path only
	cfg     *config.Pool
	idle    time.Duration
	tls     *tls.Config        // the client TLS given to New or Update (nil: defTLS)
	defTLS  *tls.Config        // the client TLS when New or Update is given none
	members map[string]*Member // by Key; a new map on every apply, read-only once published in byKey
	order   []*Member
	checker *health.Checker
	passive atomic.Pointer[health.Passive]

	// byKey is members as of the last apply, for lock-free lookups by the
	// health reporter.
	byKey atomic.Pointer[map[string]*Member]
	// dirty is set by a health transition and cleared by every rebuild
	// (see reporter.Transition).
	dirty atomic.Bool

	budget RetryBudget

	// Queue for max_connections: waiters count, a channel closed (and
	// replaced) whenever a request ends while someone waits.
	waiters atomic.Int32
	freed   atomic.Pointer[chan struct{}]

	kick   chan struct{}
	cancel context.CancelFunc
	done   chan struct{}
}

// Key is the identity of a backend across reloads: scheme://host:port.
func Key(b config.Backend) string { return b.Scheme + "://" + strings.ToLower(b.Host) }

// New builds a pool from cfg. idleTimeout bounds pooled upstream connections.
// clientTLS is the client configuration of the https backends, from
// upstream.ClientTLS with cfg.TLS's settings and files; the pool derives
// each backend's from it (upstream.ForBackend) and gives that to its
// connections and health checks alike. nil means the defaults (system
// roots, each backend's host as the server name), which ignore cfg.TLS.
func New(cfg *config.Pool, idleTimeout time.Duration, clientTLS *tls.Config, opt Options) *Pool {
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	if opt.Rand == nil {
		opt.Rand = balance.NewRand()
	}
	if opt.Clock == nil {
		opt.Clock = health.RealClock()
	}
	p := &Pool{opt: opt, members: map[string]*Member{}, kick: make(chan struct{}, 1)}
	ch := make(chan struct{})
	p.freed.Store(&ch)
	p.checker = health.NewChecker(cfg.HealthCheck, (*reporter)(p), health.Options{Clock: opt.Clock, Logger: opt.Logger})
	p.mu.Lock()
	p.applyLocked(cfg, idleTimeout, clientTLS)
	p.mu.Unlock()
	return p
}

// Snapshot returns the current snapshot. It never returns nil.
func (p *Pool) Snapshot() *Snapshot { return p.snap.Load() }

// Start launches health checks and the pool's maintenance goroutine.
func (p *Pool) Start(ctx context.Context) {
	ctx, p.cancel = context.WithCancel(ctx)
	p.done = make(chan struct{})
	p.checker.Start(ctx)
	go p.loop(ctx)
}

// Stop stops health checks and maintenance and closes idle upstream connections.
func (p *Pool) Stop() {
	if p.cancel != nil {
		p.cancel()
		<-p.done
	}
	p.checker.Stop()
	p.mu.Lock()
	for _, m := range p.order {
		m.Conns.Close()
	}
	p.mu.Unlock()
}

// Update applies a new pool config (hot reload). Backends whose key is kept
// keep their state and connections; removed ones are drained: they get no new
// requests, in-flight ones finish, then their idle connections close.
// clientTLS is as for New: https backends keep their connections (and TLS
// sessions) only when it is the one given before.
func (p *Pool) Update(cfg *config.Pool, idleTimeout time.Duration, clientTLS *tls.Config) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.applyLocked(cfg, idleTimeout, clientTLS)
}

func (p *Pool) applyLocked(cfg *config.Pool, idleTimeout time.Duration, clientTLS *tls.Config) {
	sameTLS := clientTLS == p.tls
	now := p.opt.Clock.Now()
	// A copy: the loop deletes the members it keeps, and p.members is
	// published in byKey, which the health reporter reads without p.mu.
	old := maps.Clone(p.members)
	// A renamed pool is a new label value: every backend gets a new handle
	// and the old name's series are forgotten.
	renamed := p.cfg != nil && p.cfg.Name != cfg.Name
	p.members = make(map[string]*Member, len(cfg.Backends))
	p.order = p.order[:0:0]
	targets := make([]health.Target, 0, len(cfg.Backends))
	for i, bc := range cfg.Backends {
		key := Key(bc)
		m, ok := old[key]
		if ok && m.cfg.Scheme == bc.Scheme && p.idle == idleTimeout && p.cfg != nil &&
			p.cfg.ConnectTimeout == cfg.ConnectTimeout && !renamed && (bc.Scheme != "https" || sameTLS) {
			delete(old, key)
		} else {
			if ok {
				// Same backend, new connection settings (or pool name): keep
				// its state, renew its connections.
				delete(old, key)
				m.Conns.Close()
				mb := m.Metrics
				if renamed && p.opt.Metrics != nil {
					mb = p.opt.Metrics.Backend(cfg.Name, bc.Host)
				}
				m = &Member{State: m.State, Metrics: mb, target: m.target, Window: m.Window}
			} else {
				m = &Member{State: backend.NewState(now), Window: window.New(now)}
				if p.cfg == nil {
					// Backends present at start-up serve at full weight at
					// once; slow start is for backends that come up or are
					// added later.
					m.State.MarkUpSince(time.Unix(0, 0))
				} else {
					p.opt.Logger.Info("backend added", "backend", bc.Host, "inflight", m.State.Inflight())
				}
				if p.opt.Metrics != nil {
					m.Metrics = p.opt.Metrics.Backend(cfg.Name, bc.Host)
				}
			}
			m.tls = nil
			if bc.Scheme == "https" {
				conf := clientTLS
				if conf == nil {
					if p.defTLS == nil {
						p.defTLS = upstream.ClientTLS(nil, "", false, nil, len(cfg.Backends))
					}
					conf = p.defTLS
				}
				m.tls = upstream.ForBackend(conf, bc.Host)
			}
			m.Conns = upstream.New(upstream.Options{
				Addr: bc.Host, TLS: m.tls, ConnectTimeout: cfg.ConnectTimeout, IdleTimeout: idleTimeout,
			})
		}
		m.cfg = bc
		m.State.ReconcileWeight(bc.Weight) // a weight changed in the file wins
		m.Backend = &backend.Backend{
			URL: bc.URL, Host: bc.Host, Key: key, KeyHash: balance.HashString(key),
			Weight: bc.Weight, EffectiveWeight: bc.Weight, Index: i, State: m.State,
		}
		m.target = &health.Target{Key: key, Host: bc.Host, Scheme: bc.Scheme, TLS: m.tls, State: m.State}
		p.members[key] = m
		p.order = append(p.order, m)
		targets = append(targets, *m.target)
	}
	oldName := ""
	if p.cfg != nil {
		oldName = p.cfg.Name
	}
	p.cfg = cfg
	p.idle = idleTimeout
	p.tls = clientTLS
	p.passive.Store(health.NewPassive(cfg.Passive, p.opt.Clock))
	p.checker.Update(cfg.HealthCheck, targets)
	p.rebuildLocked()
	members := p.members
	p.byKey.Store(&members)
	// Removed backends: drained. Idle connections close now; in-flight
	// requests finish on their own connection, which is closed on return.
	for _, m := range old {
		m.State.SetObserver(nil, 0)
		m.Conns.Close()
		// Metrics are per pool and host, members per scheme and host: a
		// host still served under the other scheme keeps its series.
		if p.opt.Metrics != nil && (renamed || !p.servesHostLocked(m.cfg.Host)) {
			p.opt.Metrics.Forget(oldName, m.cfg.Host)
		}
		p.opt.Logger.Info("backend removed", "backend", m.cfg.Host, "inflight", m.State.Inflight())
	}
	if renamed && p.opt.Metrics != nil {
		for _, m := range p.order {
			p.opt.Metrics.Forget(oldName, m.cfg.Host)
		}
		p.opt.Metrics.ForgetPool(oldName)
	}
}

// servesHostLocked reports whether a current member has exactly host (the
// metrics label). Members are keyed by scheme and lower-cased host, so only
// two keys can match.
func (p *Pool) servesHostLocked(host string) bool {
	for _, scheme := range [...]string{"http", "https"} {
		if m := p.members[Key(config.Backend{Scheme: scheme, Host: host})]; m != nil && m.cfg.Host == host {
			return true
		}
	}
	return false
}

// rebuildLocked publishes a new snapshot from the members' current state.
func (p *Pool) rebuildLocked() {
	p.dirty.Store(false) // before reading any state (see reporter.Transition)
	now := p.opt.Clock.Now()
	cfg := p.cfg
	members := make([]*Member, len(p.order))
	usable := make([]*backend.Backend, 0, len(p.order))
	all := make([]*backend.Backend, 0, len(p.order))
	ramping := p.rampingLocked(now)
	for i, m := range p.order {
		b := *m.Backend
		b.Weight = m.State.Weight(m.cfg.Weight) // the runtime weight, if set
		b.EffectiveWeight = b.Weight
		if ramping {
			b.EffectiveWeight = slowStartWeight(b.Weight, cfg.SlowStart, now.Sub(m.State.UpSince()))
		}
		nb := &b
		m.Backend = nb
		// Publish a copy: m is rewritten by later rebuilds and reloads
		// (under p.mu) while requests read published snapshots without
		// a lock, so a snapshot must not share it (data race, and a
		// request would see its snapshot change under it).
		pub := *m
		members[i] = &pub
		// A drained or disabled backend takes no new requests, not even
		// in panic mode, and does not count towards the panic threshold.
		if m.State.Admin() != backend.AdminReady {
			continue
		}
		all = append(all, nb)
		if m.State.Usable(now) {
			usable = append(usable, nb)
		}
	}
	// A load-aware picker (least_*) installs itself as each State's observer;
	// clear the previous one so a strategy switch or a backend leaving the
	// snapshot does not keep notifying a retired picker.
	for _, m := range p.order {
		m.State.SetObserver(nil, 0)
	}
	strategy := cfg.Strategy
	if ramping && strategy == "round_robin" {
		// Round robin ignores weights; while a backend ramps up, rotate by
		// the ramped weights instead (equal weights give the same rotation).
		strategy = "weighted_round_robin"
	}
	build, ok := balance.Lookup(strategy)
	if !ok {
		build, _ = balance.Lookup("round_robin")
	}
	snap := &Snapshot{Members: members, Usable: len(usable), Cfg: cfg, ByStickyID: make(map[uint64]int, len(members))}
	secret := ""
	if cfg.Sticky != nil {
		secret = cfg.Sticky.Secret
	}
	snap.StickyIDs = make([]uint64, len(members))
	for i, m := range members {
		id := StickyIDKeyed(secret, m.Backend.Key)
		snap.StickyIDs[i] = id
		snap.ByStickyID[id] = i
	}
	if cfg.Sticky != nil && cfg.Sticky.Type == "source_ip" {
		ipb, _ := balance.Lookup("ip_hash")
		snap.SourceIP = ipb(usable, p.opt.Rand)
	}
	switch {
	case len(usable) > 0 && cfg.PanicThreshold > 0 && len(usable)*100 < cfg.PanicThreshold*len(all):
		snap.Panic = true
		snap.Picker = build(all, p.opt.Rand)
	default:
		snap.Picker = build(usable, p.opt.Rand)
	}
	prev := p.snap.Swap(snap)
	if p.opt.Metrics != nil {
		p.opt.Metrics.PanicMode(cfg.Name, snap.Panic)
	}
	if prev != nil && prev.Panic != snap.Panic {
		if snap.Panic {
			p.opt.Logger.Warn("panic mode: too few healthy backends, spreading traffic over all",
				"usable", len(usable), "total", len(all), "panic_threshold", cfg.PanicThreshold)
			p.event(events.KindPanicMode, "", fmt.Sprintf("on: %d of %d backends usable, below panic_threshold %d%%; traffic spreads over all",
				len(usable), len(all), cfg.PanicThreshold))
		} else {
			p.opt.Logger.Info("panic mode over", "usable", len(usable), "total", len(all))
			p.event(events.KindPanicMode, "", fmt.Sprintf("off: %d of %d backends usable", len(usable), len(all)))
		}
	}
}

// rampScale multiplies every weight while some backend is in slow start, so
// that even a backend of weight 1 ramps in steps (1/16 of its share first).
const rampScale = 16

// slowStartWeight is the effective weight, on the rampScale scale, of a
// backend up for since: it grows linearly over the slow-start window from
// 1 (1/rampScale of a weight-1 share) to the full weight.
func slowStartWeight(w int, window, since time.Duration) int {
	full := w * rampScale
	if window <= 0 || since >= window || since < 0 {
		return full
	}
	e := int(int64(full) * int64(since) / int64(window))
	if e < 1 {
		e = 1
	}
	return e
}

// loop is the pool's maintenance goroutine: it rebuilds the snapshot when
// kicked (ejections), during slow-start ramps and when ejections expire, and
// reaps idle upstream connections.
func (p *Pool) loop(ctx context.Context) {
	defer close(p.done)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.kick:
			p.mu.Lock()
			p.rebuildLocked()
			p.mu.Unlock()
		case now := <-tick.C:
			p.mu.Lock()
			if r := p.rampingLocked(p.opt.Clock.Now()); r || p.snapRamping() {
				// Re-weigh during the ramp, and once more when it ends.
				p.rebuildLocked()
			}
			for _, m := range p.order {
				m.Conns.Reap(now)
			}
			p.mu.Unlock()
		}
	}
}

// rampingLocked reports whether some usable backend is within its slow-start
// window.
func (p *Pool) rampingLocked(now time.Time) bool {
	// Hash placement must not move with weights: a slow-start ramp would
	// remap keys twice.
	if p.cfg.SlowStart <= 0 || balance.HashStrategy(p.cfg.Strategy) {
		return false
	}
	for _, m := range p.order {
		since := now.Sub(m.State.UpSince())
		if since >= 0 && since < p.cfg.SlowStart && m.State.Usable(now) {
			return true
		}
	}
	return false
}

// snapRamping reports whether the published snapshot carries ramped weights.
func (p *Pool) snapRamping() bool {
	snap := p.snap.Load()
	for _, m := range snap.Members {
		if m.Backend.EffectiveWeight != m.Backend.Weight {
			return true
		}
	}
	return false
}
