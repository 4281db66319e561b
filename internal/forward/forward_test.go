package forward

import (
	"errors"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"fulcrum/internal/backend"
	"fulcrum/internal/config"
	"fulcrum/internal/pool"
)

// script is a Wire whose attempts fail with the given kinds in turn, then
// succeed; it records what the core asked of it.
type script struct {
	fails    []Kind
	hosts    []string // backend of each attempt
	fresh    []bool
	refused  string // "busy" or "none" once Refuse was called
	failed   int    // status passed to Fail
	lastHost string // backend named by Fail
	hold     bool   // keep the slot of a successful attempt (to fill max_connections)
}

func (s *script) Attempt(c *Call, mem *pool.Member, fresh bool) Result {
	s.hosts = append(s.hosts, mem.Backend.Host)
	s.fresh = append(s.fresh, fresh)
	if n := len(s.hosts) - 1; n < len(s.fails) {
		mem.State.Release(s.fails[n] != Stale)
		c.Pool.Released()
		return Result{Kind: s.fails[n], Err: errors.New("scripted")}
	}
	if !s.hold {
		mem.State.Release(false)
		c.Pool.Released()
	}
	return Result{Kind: None, Status: 200, Keep: true}
}

func (s *script) Refuse(c *Call, busy bool, usable int) bool {
	s.refused = "none"
	if busy {
		s.refused = "busy"
	}
	return false
}

func (s *script) Fail(status int, mem *pool.Member, err error) {
	s.failed = status
	if mem != nil {
		s.lastHost = mem.Backend.Host
	}
}

func testPool(t *testing.T, n int, mut func(*config.Pool)) *pool.Pool {
	t.Helper()
	c := &config.Pool{
		Name: "default", Strategy: "round_robin",
		HealthCheck: config.HealthCheck{Type: "tcp", Interval: time.Hour, Timeout: time.Second,
			HealthyThreshold: 1, UnhealthyThreshold: 1},
		Passive:        config.Passive{MaxFails: 100, FailWindow: time.Second, EjectFor: time.Second, MaxEjectFor: time.Second},
		PanicThreshold: 0, Retries: 2, RetryBuffer: 64 << 10,
		ConnectTimeout: time.Second, ResponseHeaderTimeout: time.Second,
	}
	for i := range n {
		h := "127.0.0.1:" + string(rune('1'+i)) // never dialled: the script answers
		c.Backends = append(c.Backends, config.Backend{URL: "http://" + h, Scheme: "http", Host: h, Weight: 1})
	}
	if mut != nil {
		mut(c)
	}
	return pool.New(c, time.Minute, nil, pool.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
}

func run(t *testing.T, p *pool.Pool, w *script, set func(*Call)) bool {
	t.Helper()
	var c Call
	c.Begin(p, nil)
	c.Replayable, c.Idempotent = true, true
	if set != nil {
		set(&c)
	}
	return c.Run(w, time.Now())
}

func distinct(hosts []string) bool {
	seen := map[string]bool{}
	for _, h := range hosts {
		if seen[h] {
			return false
		}
		seen[h] = true
	}
	return true
}

func TestRetryOnOtherBackends(t *testing.T) {
	p := testPool(t, 3, nil)
	w := &script{fails: []Kind{Reset, Timeout}}
	if keep := run(t, p, w, nil); !keep || w.failed != 0 {
		t.Fatalf("keep %v, failed %d", keep, w.failed)
	}
	if len(w.hosts) != 3 || !distinct(w.hosts) {
		t.Fatalf("attempts on %v, want three distinct backends", w.hosts)
	}
}

func TestRetriesBounded(t *testing.T) {
	p := testPool(t, 4, nil) // retries: 2, so three attempts in all
	w := &script{fails: []Kind{Reset, Reset, Timeout, Reset}}
	if keep := run(t, p, w, nil); keep {
		t.Fatal("kept the connection after failing")
	}
	if len(w.hosts) != 3 || w.failed != 504 || w.lastHost != w.hosts[2] {
		t.Fatalf("attempts %v, Fail(%d) naming %q; want 3 attempts and 504 naming the last", w.hosts, w.failed, w.lastHost)
	}
}

func TestNotRetried(t *testing.T) {
	for _, c := range []struct {
		name string
		kind Kind
		set  func(*Call)
	}{
		{"non-idempotent reset", Reset, func(c *Call) { c.Idempotent = false }},
		{"body not replayable", Timeout, func(c *Call) { c.Replayable = false }},
		{"upgrade", Connect, func(c *Call) { c.Upgrade = true }},
		{"bad response", BadResponse, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := &script{fails: []Kind{c.kind}}
			run(t, testPool(t, 3, nil), w, c.set)
			want := 502
			if c.kind == Timeout {
				want = 504
			}
			if len(w.hosts) != 1 || w.failed != want {
				t.Fatalf("attempts %v, Fail(%d); want one attempt and %d", w.hosts, w.failed, want)
			}
		})
	}
}

func TestConnectRetriedBeforeBody(t *testing.T) {
	// A streamed body that never started may go to another backend after a
	// connect failure, even for a non-idempotent request.
	w := &script{fails: []Kind{Connect}}
	run(t, testPool(t, 2, nil), w, func(c *Call) { c.Replayable, c.Idempotent = false, false })
	if len(w.hosts) != 2 || w.failed != 0 {
		t.Fatalf("attempts %v, Fail(%d); want a second attempt that succeeds", w.hosts, w.failed)
	}
}

func TestStaleRepeatsOnSameBackendOnce(t *testing.T) {
	p := testPool(t, 3, func(c *config.Pool) { c.Retries = 0 })
	w := &script{fails: []Kind{Stale}}
	if !run(t, p, w, nil) {
		t.Fatal("not kept")
	}
	if len(w.hosts) != 2 || w.hosts[0] != w.hosts[1] || w.fresh[0] || !w.fresh[1] {
		t.Fatalf("attempts %v fresh %v; want the same backend again on a fresh connection", w.hosts, w.fresh)
	}
	// A second stale failure counts as a reset: with retries 0, that is the end.
	w = &script{fails: []Kind{Stale, Stale}}
	run(t, p, w, nil)
	if len(w.hosts) != 2 || w.failed != 502 {
		t.Fatalf("attempts %v, Fail(%d); want two attempts then 502", w.hosts, w.failed)
	}
}

func TestPinnedFirst(t *testing.T) {
	p := testPool(t, 3, nil)
	want := p.Snapshot().Members[2].Backend.Host
	w := &script{fails: []Kind{Reset}}
	run(t, p, w, func(c *Call) { c.Pinned = 2 })
	if w.hosts[0] != want || w.hosts[1] == want {
		t.Fatalf("attempts %v; want the pinned %s first, another after", w.hosts, want)
	}
}

func TestRefusedWhenAllBusy(t *testing.T) {
	p := testPool(t, 2, func(c *config.Pool) { c.MaxConnections = 1 })
	hold := &script{hold: true}
	run(t, p, hold, nil)
	run(t, p, hold, nil) // both backends now hold their one slot
	w := &script{}
	if run(t, p, w, nil) || w.refused != "busy" || len(w.hosts) != 0 {
		t.Fatalf("refused %q after attempts %v; want busy with none", w.refused, w.hosts)
	}
}

func TestQueueWaitsForSlot(t *testing.T) {
	p := testPool(t, 1, func(c *config.Pool) { c.MaxConnections = 1; c.QueueTimeout = 5 * time.Second })
	run(t, p, &script{hold: true}, nil)
	mem := p.Snapshot().Members[0]
	done := make(chan *script, 1)
	go func() { w := &script{}; run(t, p, w, nil); done <- w }()
	deadline := time.Now().Add(5 * time.Second)
	for p.Queued() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if p.Queued() != 1 {
		t.Fatal("the request did not queue")
	}
	mem.State.Release(false)
	p.Released()
	select {
	case w := <-done:
		if len(w.hosts) != 1 || w.refused != "" {
			t.Fatalf("queued request: attempts %v refused %q", w.hosts, w.refused)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the queued request never got the freed slot")
	}
}

func TestQueueTimesOut(t *testing.T) {
	p := testPool(t, 1, func(c *config.Pool) { c.MaxConnections = 1; c.QueueTimeout = 20 * time.Millisecond })
	run(t, p, &script{hold: true}, nil)
	w := &script{}
	t0 := time.Now()
	run(t, p, w, nil)
	if w.refused != "busy" || time.Since(t0) < 20*time.Millisecond {
		t.Fatalf("refused %q after %v; want busy after the queue timeout", w.refused, time.Since(t0))
	}
}

// TestDisabledNeverServes: a drained or disabled backend gets no attempt,
// neither from the strategy, nor as a retry, nor from the fallback scan
// that runs when the strategy's choices are at max_connections.
func TestDisabledNeverServes(t *testing.T) {
	for _, st := range []backend.AdminState{backend.AdminDrain, backend.AdminDisabled} {
		t.Run(st.String(), func(t *testing.T) {
			p := testPool(t, 3, nil)
			off := p.Snapshot().Members[0].Backend.Host
			if _, err := p.SetAdminState(off, st); err != nil {
				t.Fatal(err)
			}
			for i := range 30 {
				w := &script{fails: []Kind{Reset, Connect}}
				run(t, p, w, nil)
				if slices.Contains(w.hosts, off) {
					t.Fatalf("request %d: attempts %v include the %s backend %s", i, w.hosts, st, off)
				}
			}
			// The other two hold their one slot: the fallback scan must
			// refuse rather than take the backend that is out.
			p = testPool(t, 3, func(c *config.Pool) { c.MaxConnections = 1 })
			if _, err := p.SetAdminState(off, st); err != nil {
				t.Fatal(err)
			}
			hold := &script{hold: true}
			run(t, p, hold, nil)
			run(t, p, hold, nil)
			w := &script{}
			if run(t, p, w, nil); w.refused != "busy" || len(w.hosts) != 0 {
				t.Fatalf("refused %q, attempts %v; want busy with none (the %s backend must not serve)", w.refused, w.hosts, st)
			}
		})
	}
}

// retryLog is an Observer that records each retry it hears of.
type retryLog []string

func (l *retryLog) Retrying(attempt int, mem *pool.Member, kind Kind, err error) {
	*l = append(*l, string(rune('0'+attempt))+" "+mem.Backend.Host+" "+kind.String()+" "+err.Error())
}

func TestObserverHearsEachRetry(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fails []Kind
		want  int
		kinds []string
	}{
		{"first attempt answers", nil, 0, nil},
		{"one retry", []Kind{Reset}, 1, []string{"reset"}},
		{"connect then timeout", []Kind{Connect, Timeout}, 2, []string{"connect", "timeout"}},
		{"retries used up", []Kind{Reset, Reset, Reset}, 2, []string{"reset", "reset"}},
		{"a stale repeat is no retry", []Kind{Stale}, 0, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var log retryLog
			w := &script{fails: tc.fails}
			run(t, testPool(t, 3, nil), w, func(c *Call) {
				c.Replayable, c.Idempotent = true, true
				c.Observer = &log
			})
			if len(log) != tc.want {
				t.Fatalf("observer heard %d retries %q, want %d", len(log), log, tc.want)
			}
			for i, line := range log {
				want := string(rune('1'+i)) + " " + w.hosts[i] + " " + tc.kinds[i] + " scripted"
				if line != want {
					t.Errorf("retry %d: %q, want %q", i, line, want)
				}
			}
		})
	}
}

func TestRetriesCounted(t *testing.T) {
	for _, tc := range []struct {
		name    string
		fails   []Kind
		retries int
	}{
		{"first attempt answers", nil, 0},
		{"one retry", []Kind{Reset}, 1},
		{"two retries, then give up", []Kind{Reset, Reset, Reset}, 2},
		{"a stale repeat is no retry", []Kind{Stale}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c Call
			c.Begin(testPool(t, 3, nil), nil)
			c.Replayable, c.Idempotent = true, true
			c.Run(&script{fails: tc.fails}, time.Now())
			if c.Retries != tc.retries {
				t.Errorf("Retries = %d, want %d", c.Retries, tc.retries)
			}
		})
	}
}
