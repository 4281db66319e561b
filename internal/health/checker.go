// Package health decides whether backends may receive traffic.
//
// Two mechanisms feed one backend.State:
//
//   - The active Checker probes every target on its own goroutine and
//     schedule (TCP connect or HTTP GET) and applies HAProxy-style rise/fall
//     thresholds to the results: State.SetHealthy.
//   - Passive outlier detection (Passive) watches real traffic on the request
//     path and ejects a backend after a run of failures: State.TryEject. An
//     ejected backend stays out until the Checker readmits it: the first
//     active check that passes once the ejection's back-off has ended.
//
// A backend is usable when it is healthy and not ejected (State.Usable). The
// package knows nothing about pools or pickers: it reports through the
// Reporter interface it defines.
package health

import (
	"context"
	"crypto/tls"
	"log/slog"
	"math/rand/v2"
	"reflect"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"fulcrum/internal/backend"
	"fulcrum/internal/config"
)

// Target is one backend to check.
type Target struct {
	// Key identifies the target across Update calls (the backend key).
	Key string
	// Host is the dial address, "host:port".
	Host string
	// Scheme is "http" or "https" (used by HTTP checks; "" means "http").
	Scheme string
	// TLS is the client configuration of HTTP checks of an https target
	// (nil = Options.TLSClientConfig). The pool gives the one its own
	// connections to the backend use, so checks verify what requests
	// verify and share its session cache. Not modified by the checker.
	TLS *tls.Config
	// State receives check results and verdicts. Never nil.
	State *backend.State
}

// Reporter receives the checker's events. Both methods are called on the
// target's own checker goroutine, never with a lock of the Checker held, so
// they may call back into the Checker (except Stop, which waits for that
// goroutine). A slow Reporter delays only that target's next check.
type Reporter interface {
	// CheckDone is called after every completed check with its outcome; err
	// is nil when ok, else *StatusError, *TimeoutError or the dial/transport
	// error. It must not block. (For metrics: each failure counts as a
	// loadbalancer_backend_errors_total{error_type="health_check"}.)
	CheckDone(t *Target, ok bool, err error)
	// Transition is called once per change of the target's verdict, after
	// State is updated:
	//   - up=false when active checks mark the backend down (State.Healthy
	//     turned false), even if it is also ejected;
	//   - up=true when the backend becomes usable through the checker: active
	//     checks mark it up while it is not ejected, or a passing check
	//     readmits an ejected backend that is healthy.
	// Ejections themselves are not reported here: Passive.Observe returns
	// true to its caller instead. Must not block for long.
	Transition(t *Target, c Change)
}

// Change describes one Transition.
type Change struct {
	// Up is the new verdict: true when the backend became usable.
	Up bool
	// Returned is set (with Up) when the change ends a passive ejection:
	// the first check passing after the back-off readmitted the backend.
	Returned bool
	// Reason is the log line's reason, e.g. "3 consecutive failed checks:
	// GET /health returned 503" or "2 consecutive passed checks: HTTP 200".
	Reason string
	// Detail is the failing check's detail when Up is false (also stored
	// with State.SetDownDetail): "GET /health returned 503", "connect:
	// connection refused", "timeout after 2s", "TLS error: ...".
	Detail string
}

// Options are the Checker's collaborators. The zero value works.
type Options struct {
	// Clock schedules checks and timestamps results (nil = RealClock()).
	Clock Clock
	// Logger receives one line per transition (nil = slog.Default()).
	Logger *slog.Logger
	// Rand returns uniform numbers in [0, 1) for jitter. It is called from
	// every target goroutine, so it must be safe for concurrent use
	// (nil = math/rand/v2.Float64).
	Rand func() float64
	// TLSClientConfig is used for checks of https targets (nil = system
	// roots, server name from the target's host).
	TLSClientConfig *tls.Config
}

// Checker runs active health checks: one goroutine per target, each with its
// own schedule, so a hung backend never delays the checks of another.
//
// Schedule: a target's first check runs at a random delay in
// [0, min(Interval, 1s)) after Start (or after it is added by Update); each
// next check starts Interval ± 10% (uniform) after the previous one ended.
// Every check has a hard deadline of Timeout. ProbeAt and ProbeNow add
// out-of-schedule checks. Once a target's goroutine has seen it ejected (it
// looks after every check and on every ProbeAt/ProbeNow/Update wake-up), a
// check also runs when the ejection back-off ends (State.EjectedUntil).
//
// All methods are safe for concurrent use.
type Checker struct {
	rep    Reporter
	clock  Clock
	log    *slog.Logger
	rand   func() float64
	prober *prober

	settings atomic.Pointer[settings]

	mu      sync.Mutex         // guards the fields below
	cfg     config.HealthCheck // the config settings was compiled from
	runners map[string]*runner
	ctx     context.Context // nil until Start
	cancel  context.CancelFunc
	stopped bool

	wg sync.WaitGroup // one per running target goroutine
}

// NewChecker returns a checker for cfg that reports to rep. It checks nothing
// until Update gives it targets and Start launches them.
func NewChecker(cfg config.HealthCheck, rep Reporter, opts Options) *Checker {
	c := &Checker{
		rep:     rep,
		clock:   opts.Clock,
		log:     opts.Logger,
		rand:    opts.Rand,
		prober:  newProber(opts.TLSClientConfig),
		runners: map[string]*runner{},
		cfg:     cfg,
	}
	if c.clock == nil {
		c.clock = RealClock()
	}
	if c.log == nil {
		c.log = slog.Default()
	}
	if c.rand == nil {
		c.rand = rand.Float64
	}
	c.settings.Store(compile(cfg))
	return c
}

// Update replaces the config and the target set (hot reload). Targets are
// matched by Key: new ones start being checked (if the checker is started),
// removed ones stop, kept ones keep their rise/fall counters, their schedule
// and their State (a different State given for a kept Key is ignored; Host
// and Scheme are taken from the new Target). The new cfg applies from each
// target's next check; a shorter Interval also pulls that check forward.
//
// Update does not wait for removed targets' goroutines to exit (Stop does),
// so it may be called with the caller's own locks held even if the Reporter
// takes them; a removed target may still report a check already under way.
//
// A kept target whose Host, Scheme and config are unchanged is not touched,
// so an unchanged reload of many targets wakes no goroutine.
func (c *Checker) Update(cfg config.HealthCheck, targets []Target) {
	removed := false
	c.mu.Lock()
	changed := !reflect.DeepEqual(cfg, c.cfg)
	if changed {
		c.cfg = cfg
		c.settings.Store(compile(cfg))
	}
	keep := make(map[string]bool, len(targets))
	for _, t := range targets {
		keep[t.Key] = true
		if r, ok := c.runners[t.Key]; ok {
			if cur := r.target.Load(); cur.Host != t.Host || cur.Scheme != t.Scheme || cur.TLS != t.TLS {
				nt := t
				nt.State = cur.State
				r.target.Store(&nt)
			} else if !changed {
				continue
			}
			r.wake() // re-read the settings and target
			continue
		}
		r := newRunner(c, t)
		c.runners[t.Key] = r
		if c.ctx != nil && !c.stopped {
			c.launchLocked(r)
		}
	}
	for key, r := range c.runners {
		if !keep[key] {
			delete(c.runners, key)
			if r.cancel != nil {
				r.cancel()
			}
			removed = true
		}
	}
	// New runners are not woken: they read the settings as they start, and
	// an extra wake-up would only make them set their first timer twice.
	c.mu.Unlock()
	c.prober.retain(targets)
	if removed {
		// Drop the removed backends' idle connections (the others redial once).
		c.prober.closeIdle()
	}
}

// Start launches one goroutine per target; they run until Stop or until ctx
// is done. Calls after the first, or after Stop, do nothing.
func (c *Checker) Start(ctx context.Context) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ctx != nil || c.stopped {
		return
	}
	c.ctx, c.cancel = context.WithCancel(ctx)
	for _, r := range c.runners {
		c.launchLocked(r)
	}
}

// Stop cancels all checks (a check under way is aborted and not reported) and
// waits for every target goroutine to exit, then closes idle connections. It
// must not be called from a Reporter method. Later calls do nothing more.
func (c *Checker) Stop() {
	c.mu.Lock()
	c.stopped = true
	if c.cancel != nil {
		c.cancel()
	}
	c.mu.Unlock()
	c.wg.Wait()
	c.prober.close()
}

// ProbeNow schedules an immediate check of the target with this key (no-op for
// an unknown key). It never blocks.
func (c *Checker) ProbeNow(key string) { c.ProbeAt(key, c.clock.Now()) }

// ProbeAt schedules a check of the target with this key at time at (at once
// if at is not in the future); an earlier pending request wins. It never
// blocks and takes only a short lock, so the request path may call it.
//
// Contract with passive checks: when Passive.Observe returns true, the caller
// calls ProbeAt(key, st.EjectedUntil()). That check (or any later one) that
// passes readmits the backend and reports Transition(up) if it is healthy.
// If it fails, the backend stays ejected until a regular check passes.
func (c *Checker) ProbeAt(key string, at time.Time) {
	c.mu.Lock()
	r := c.runners[key]
	c.mu.Unlock()
	if r == nil {
		return
	}
	n := at.UnixNano()
	if n == 0 {
		n = 1
	}
	for {
		old := r.probeAt.Load()
		if old != 0 && old <= n {
			break
		}
		if r.probeAt.CompareAndSwap(old, n) {
			break
		}
	}
	r.wake()
}

// launchLocked starts r's goroutine. c.mu must be held and c.ctx set.
func (c *Checker) launchLocked(r *runner) {
	ctx, cancel := context.WithCancel(c.ctx)
	r.cancel = cancel
	s := c.settings.Load()
	// The first due time is fixed here, not when the goroutine gets going.
	first := c.clock.Now().Add(time.Duration(c.rand() * float64(min(s.interval, time.Second))))
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		r.run(ctx, first)
	}()
}

// jittered spreads d uniformly over [0.9d, 1.1d) for u in [0, 1).
func jittered(d time.Duration, u float64) time.Duration {
	return time.Duration(float64(d) * (0.9 + 0.2*u))
}

// runner is one target's goroutine and schedule.
type runner struct {
	c      *Checker
	target atomic.Pointer[Target]
	// probeAt is the unix-nano time of a requested out-of-schedule check (0 = none).
	probeAt atomic.Int64
	wakeC   chan struct{}      // cap 1: "re-read probeAt and settings"
	cancel  context.CancelFunc // set under c.mu by launchLocked

	rf riseFall // owned by the run goroutine
}

func newRunner(c *Checker, t Target) *runner {
	r := &runner{c: c, wakeC: make(chan struct{}, 1), rf: newRiseFall(t.State.Healthy())}
	r.target.Store(&t)
	return r
}

func (r *runner) wake() {
	select {
	case r.wakeC <- struct{}{}:
	default:
	}
}

// run is the target's loop: wait until the next check is due, run it, repeat.
// first is when the first regular check is due.
func (r *runner) run(ctx context.Context, first time.Time) {
	clock := r.c.clock
	cur := r.c.settings.Load()
	next := first         // next regular check
	var lastEnd time.Time // end of the previous check (zero before the first)
	var lastStart int64   // unix-nano start of the previous check
	for {
		if s := r.c.settings.Load(); s != cur {
			cur = s
			if !lastEnd.IsZero() {
				if n := lastEnd.Add(jittered(s.interval, r.c.rand())); n.Before(next) {
					next = n
				}
			}
		}
		due := next.UnixNano()
		if p := r.probeAt.Load(); p != 0 && p < due {
			due = p
		}
		// An ejected target is checked as soon as its back-off ends, once.
		if u := r.target.Load().State.EjectedUntil(); !u.IsZero() && u.UnixNano() > lastStart && u.UnixNano() < due {
			due = u.UnixNano()
		}
		if d := time.Duration(due - clock.Now().UnixNano()); d > 0 {
			t := clock.NewTimer(d)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-r.wakeC:
				t.Stop()
				continue
			case <-t.C():
			}
		}
		if ctx.Err() != nil {
			return
		}
		cur = r.c.settings.Load() // an Update while waiting applies to this check
		start := clock.Now()
		lastStart = start.UnixNano()
		if p := r.probeAt.Load(); p != 0 && p <= lastStart {
			r.probeAt.CompareAndSwap(p, 0) // this check serves the request
		}
		if !r.check(ctx, cur) {
			return
		}
		lastEnd = clock.Now()
		next = lastEnd.Add(jittered(cur.interval, r.c.rand()))
	}
}

// check runs one check and applies its outcome. It returns false if ctx was
// cancelled meanwhile (nothing is recorded or reported then).
func (r *runner) check(ctx context.Context, s *settings) bool {
	t := r.target.Load()
	msg, err := r.c.prober.probe(ctx, s, t)
	if ctx.Err() != nil {
		return false
	}
	ok := err == nil
	detail := ""
	if !ok {
		msg = err.Error()
		detail = describe(s, err)
	}
	now := r.c.clock.Now()
	st := t.State
	st.RecordCheck(ok, msg, now)
	r.c.rep.CheckDone(t, ok, err)

	changed := r.rf.observe(ok, s.rise, s.fall)
	up := r.rf.up
	if !ok && !up {
		// Before SetHealthy, so that a reader seeing the backend down
		// sees why; kept current while it stays down.
		st.SetDownDetail(detail)
	}
	if changed {
		st.SetHealthy(up, now)
	}
	readmitted := false
	if ok {
		if u := st.EjectedUntil(); !u.IsZero() && !now.Before(u) {
			readmitted = readmit(st, now)
		}
	}
	log := r.c.log
	switch {
	case changed && !up:
		reason := pluralChecks(s.fall, "failed") + ": " + detail
		log.Warn("backend down", "backend", t.Host, "reason", reason)
		r.c.rep.Transition(t, Change{Reason: reason, Detail: detail})
	case up && (changed || readmitted) && !st.Ejected(now):
		reason := pluralChecks(s.rise, "passed") + ": " + msg
		if readmitted {
			reason = "ejection ended and active check passed: " + msg
		}
		log.Info("backend up", "backend", t.Host, "reason", reason)
		r.c.rep.Transition(t, Change{Up: true, Returned: readmitted, Reason: reason})
	case changed: // up, but still ejected: the readmission reports it
		log.Info("backend passes active checks but is still ejected", "backend", t.Host,
			"until", st.EjectedUntil())
	case readmitted && !up: // readmitted, but still down by active checks
		log.Info("backend ejection ended; still down by active checks", "backend", t.Host)
	}
	return true
}

func pluralChecks(n int, what string) string {
	n = max(n, 1)
	if n == 1 {
		return "1 " + what + " check"
	}
	return strconv.Itoa(n) + " consecutive " + what + " checks"
}
