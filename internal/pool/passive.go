package pool

import (
	"strconv"
	"time"

	"fulcrum/internal/events"
	"fulcrum/internal/health"
	"fulcrum/internal/metrics"
)

// maxEjectPercent bounds passive ejection: it never takes out more than half
// of a pool's backends (and so never the only one). Active checks still take
// any backend out. This keeps a stall on fulcrum's side, which makes every
// backend look slow at once, from ejecting them all.
const maxEjectPercent = 50

// Observe feeds one request outcome into passive health checks. It runs on
// the request path: lock-free unless it ejects the backend. When the cause
// of a failure is known, ObserveFailure and ObserveResponse give the
// ejection's reason.
func (p *Pool) Observe(m *Member, failed bool) { p.observe(m, failed, nil, 0) }

// ObserveFailure is Observe of a failed request whose cause is err (a
// connection refused, reset or timed out): an ejection it causes names err.
func (p *Pool) ObserveFailure(m *Member, err error) { p.observe(m, true, err, 0) }

// ObserveResponse is Observe of a request answered with status; failed says
// whether that status counts as a failure (a 5xx with passive.fail_on_5xx).
func (p *Pool) ObserveResponse(m *Member, status int, failed bool) { p.observe(m, failed, nil, status) }

func (p *Pool) observe(m *Member, failed bool, cause error, status int) {
	pas := p.passive.Load()
	if !pas.Enabled() {
		return // before the ejection cap's scan of the members
	}
	if failed && !p.ejectionAllowed(m) {
		// Ejecting this backend would take out more than half of the pool:
		// its failures do not count towards an ejection now (no per-request
		// log, no back-off growth). Active checks still apply.
		return
	}
	if pas.Observe(m.State, failed) {
		until := m.State.EjectedUntil()
		fails := m.State.ConsecutiveFailures().Load()
		reason := "ejected after " + strconv.FormatInt(fails, 10) + " failures"
		switch {
		case cause != nil:
			reason += ": " + health.ErrorDetail(cause)
		case status > 0:
			reason += ": HTTP " + strconv.Itoa(status)
		}
		m.State.SetEjectReason(reason)
		p.opt.Logger.Warn("backend ejected by passive checks", "backend", m.Backend.Host,
			"until", until.Format(time.RFC3339), "consecutive_failures", fails, "reason", reason)
		if m.Metrics != nil {
			m.Metrics.Error(metrics.ErrEjected)
		}
		p.event(events.KindEjected, m.Backend.Host, reason+"; out until at least "+until.UTC().Format(time.RFC3339))
		p.checker.ProbeAt(m.Backend.Key, until)
		select {
		case p.kick <- struct{}{}:
		default:
		}
	}
}

// ejectionAllowed reports whether ejecting m would keep the ejected backends
// within maxEjectPercent. It scans the members only when a request failed.
func (p *Pool) ejectionAllowed(m *Member) bool {
	snap := p.snap.Load()
	now := p.opt.Clock.Now()
	ejected := 0
	for _, o := range snap.Members {
		if o.State == m.State || o.State.Ejected(now) {
			ejected++
		}
	}
	return ejected*100 <= maxEjectPercent*len(snap.Members)
}

// event records an event about this pool (backend is host:port, or "" for
// the pool itself). It does nothing without an event log.
func (p *Pool) event(kind, backend, msg string) {
	if p.opt.Events == nil {
		return
	}
	name := ""
	if snap := p.snap.Load(); snap != nil {
		name = snap.Cfg.Name
	}
	p.opt.Events.Add(kind, name, backend, msg)
}
