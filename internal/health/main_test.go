package health_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"fulcrum/internal/backend"
	"fulcrum/internal/config"
	"fulcrum/internal/health"
	"fulcrum/internal/health/healthtest"
	"fulcrum/internal/testutil"
)

// TestMain fails the package if any goroutine started by the tests (checker
// goroutines, transport connections, test servers) outlives them.
func TestMain(m *testing.M) { testutil.VerifyNoLeaks(m, nil) }

// epoch is the fake clock's start.
var epoch = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// half makes every jitter draw 0.5: the first check runs at
// min(Interval, 1s)/2 after Start, then exactly every Interval.
func half() float64 { return 0.5 }

// event is one Reporter call.
type event struct {
	key    string
	check  bool // CheckDone (else Transition)
	ok     bool // CheckDone: ok; Transition: up
	err    error
	reason string
	// Transition only: Change.Detail and Change.Returned.
	detail   string
	returned bool
}

// recorder is a Reporter that queues events for the test.
type recorder struct {
	t  *testing.T
	ch chan event
}

func newRecorder(t *testing.T) *recorder { return &recorder{t: t, ch: make(chan event, 1000)} }

func (r *recorder) CheckDone(t *health.Target, ok bool, err error) {
	if ok != (err == nil) {
		r.t.Errorf("CheckDone(%s): ok=%v with err=%v", t.Key, ok, err)
	}
	r.ch <- event{key: t.Key, check: true, ok: ok, err: err}
}

func (r *recorder) Transition(t *health.Target, c health.Change) {
	up := c.Up
	if t.State.Healthy() != up || (up && t.State.Ejected(time.Time{})) {
		r.t.Errorf("Transition(%s, %v) does not match State (healthy=%v, ejected=%v)",
			t.Key, up, t.State.Healthy(), t.State.Ejected(time.Time{}))
	}
	if up == (c.Detail != "") || (c.Returned && !up) {
		r.t.Errorf("Transition(%s, %+v): a detail goes with down only, returned with up only", t.Key, c)
	}
	if !up && t.State.DownReason(time.Time{}) != c.Detail {
		r.t.Errorf("Transition(%s) down: State.DownReason %q, Change.Detail %q", t.Key, t.State.DownReason(time.Time{}), c.Detail)
	}
	r.ch <- event{key: t.Key, ok: up, reason: c.Reason, detail: c.Detail, returned: c.Returned}
}

// next returns the next event, failing the test if none arrives in time.
func (r *recorder) next() event {
	r.t.Helper()
	select {
	case e := <-r.ch:
		return e
	case <-time.After(10 * time.Second):
		r.t.Fatal("timed out waiting for a health event")
		return event{}
	}
}

// nextCheck returns the next CheckDone event for key, skipping and returning
// any Transition events of key seen before it.
func (r *recorder) nextCheck(key string) event {
	r.t.Helper()
	for {
		e := r.next()
		if e.key != key {
			r.t.Fatalf("unexpected event %+v while waiting for a check of %s", e, key)
		}
		if e.check {
			return e
		}
		r.t.Fatalf("unexpected transition %+v while waiting for a check of %s", e, key)
	}
}

// none fails the test if an event is queued.
func (r *recorder) none() {
	r.t.Helper()
	select {
	case e := <-r.ch:
		r.t.Fatalf("unexpected event %+v", e)
	default:
	}
}

// pending returns any queued events without waiting.
func (r *recorder) pending() []event {
	var out []event
	for {
		select {
		case e := <-r.ch:
			out = append(out, e)
		default:
			return out
		}
	}
}

// scripted is an HTTP backend whose status the test sets; it counts requests.
type scripted struct {
	*httptest.Server
	mu     sync.Mutex
	status int
	hits   int
	last   *http.Request
}

func newScripted(t *testing.T, status int) *scripted {
	s := &scripted{status: status}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.hits++
		s.last = r
		code := s.status
		s.mu.Unlock()
		w.WriteHeader(code)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *scripted) set(code int) {
	s.mu.Lock()
	s.status = code
	s.mu.Unlock()
}

func (s *scripted) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hits
}

func (s *scripted) target(key string) health.Target {
	return health.Target{Key: key, Host: s.Listener.Addr().String(), Scheme: "http", State: backend.NewState(epoch)}
}

func httpCfg(interval time.Duration, rise, fall int) config.HealthCheck {
	return config.HealthCheck{
		Type: "http", Path: "/health", Interval: interval, Timeout: 5 * time.Second,
		ExpectedStatus: []config.StatusRange{{Lo: 200, Hi: 399}}, HealthyThreshold: rise, UnhealthyThreshold: fall,
	}
}

// startChecker builds and starts a checker on a fake clock; Stop runs at cleanup.
func startChecker(t *testing.T, cfg config.HealthCheck, targets ...health.Target) (*health.Checker, *healthtest.Clock, *recorder) {
	t.Helper()
	return startCheckerOpts(t, cfg, health.Options{}, targets...)
}

// startCheckerOpts is startChecker with options; Clock, Rand and (if nil)
// Logger are filled in.
func startCheckerOpts(t *testing.T, cfg config.HealthCheck, opts health.Options, targets ...health.Target) (*health.Checker, *healthtest.Clock, *recorder) {
	t.Helper()
	clk := healthtest.NewClock(epoch)
	rec := newRecorder(t)
	opts.Clock, opts.Rand = clk, half
	if opts.Logger == nil {
		opts.Logger = testLogger(t, nil)
	}
	c := health.NewChecker(cfg, rec, opts)
	c.Update(cfg, targets)
	c.Start(t.Context())
	t.Cleanup(c.Stop)
	return c, clk, rec
}

// park waits until n target goroutines wait on their timers.
func park(t *testing.T, clk *healthtest.Clock, n int) {
	t.Helper()
	if !clk.WaitPending(n, 10*time.Second) {
		t.Fatalf("timed out waiting for %d parked targets (%d pending)", n, clk.Pending())
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

func contextWithCancel(t *testing.T) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(t.Context())
	t.Cleanup(cancel)
	return ctx, cancel
}

func testLogger(t *testing.T, buf *testutil.LogBuffer) *slog.Logger {
	var w io.Writer = t.Output()
	if buf != nil {
		w = io.MultiWriter(w, buf)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	}))
}
