package pool

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"fulcrum/internal/backend"
	"fulcrum/internal/balance"
	"fulcrum/internal/config"
	"fulcrum/internal/events"
	"fulcrum/internal/testutil"
)

// eventPool is testPool with an event log.
func eventPool(t *testing.T, cfg *config.Pool) (*Pool, *events.Log) {
	t.Helper()
	p, _ := testPool(t, cfg, nil)
	log := events.New(events.Capacity, nil)
	p.opt.Events = log
	return p, log
}

// TestDrainAndDisableStopPicks: a drained or disabled backend gets no pick
// from the snapshot published by the call, whatever the strategy, and not
// in panic mode either; enable brings it back.
func TestDrainAndDisableStopPicks(t *testing.T) {
	for _, strategy := range []string{"round_robin", "weighted_round_robin", "least_connections", "ip_hash", "consistent_hash"} {
		for _, st := range []backend.AdminState{backend.AdminDrain, backend.AdminDisabled} {
			t.Run(strategy+"/"+st.String(), func(t *testing.T) {
				hosts := hostsN(3)
				p, _ := testPool(t, testCfg(hosts, func(c *config.Pool) { c.Strategy = strategy }), nil)
				got, err := p.SetAdminState(hosts[1], st)
				if err != nil {
					t.Fatal(err)
				}
				if got.AdminState != st.String() || got.URL != "http://"+hosts[1] {
					t.Fatalf("status %+v, want admin_state %s of %s", got, st, hosts[1])
				}
				n := picksHashed(t, p, 300)
				if n[hosts[1]] != 0 || n[hosts[0]] == 0 || n[hosts[2]] == 0 {
					t.Fatalf("picks %v: want none on %s, some on the others", n, hosts[1])
				}
				if p.Snapshot().Usable != 2 {
					t.Fatalf("Usable = %d, want 2", p.Snapshot().Usable)
				}
				// Status keeps reporting health: the backend is up, just out.
				if s := p.Statuses()[1]; !s.Up || !s.Healthy || s.AdminState != st.String() || s.DownReason != nil {
					t.Fatalf("status %+v", s)
				}
				if _, err := p.SetAdminState(hosts[1], backend.AdminReady); err != nil {
					t.Fatal(err)
				}
				if n := picksHashed(t, p, 300); n[hosts[1]] == 0 {
					t.Fatalf("enabled backend still gets no picks: %v", n)
				}
			})
		}
	}
}

// picksHashed is picks with a different hash per request, so hash
// strategies spread too.
func picksHashed(t *testing.T, p *Pool, n int) map[string]int {
	t.Helper()
	snap := p.Snapshot()
	got := map[string]int{}
	for i := 0; i < n; i++ {
		b, err := snap.Picker.Pick(&balance.Request{Hash: balance.HashString(string(rune(i))), HasHash: true})
		if err != nil {
			t.Fatalf("pick %d: %v", i, err)
		}
		got[b.Host]++
	}
	return got
}

// TestAdminStateOutOfPanic: with three of four backends down, panic mode
// spreads traffic over all backends, but never over a disabled one; and a
// drained backend does not count towards the threshold.
func TestAdminStateOutOfPanic(t *testing.T) {
	hosts := hostsN(4)
	p, log := eventPool(t, testCfg(hosts, func(c *config.Pool) { c.PanicThreshold = 50 }))
	setHealth(p, 1, false)
	setHealth(p, 2, false)
	setHealth(p, 3, false)
	if !p.Snapshot().Panic {
		t.Fatal("1 of 4 usable with threshold 50: want panic mode")
	}
	if _, err := p.SetAdminState(hosts[3], backend.AdminDisabled); err != nil {
		t.Fatal(err)
	}
	snap := p.Snapshot()
	if !snap.Panic {
		t.Fatal("1 of 3 ready backends usable: still panic mode")
	}
	if n := picks(t, p, 300); n[hosts[3]] != 0 || len(n) != 3 {
		t.Fatalf("panic picks %v: want the three ready backends, never the disabled one", n)
	}
	// Drain the two down ones that are still ready: with the first, 1 of 2
	// ready backends is usable, which is not below 50%: panic mode ends.
	for _, h := range hosts[1:3] {
		if _, err := p.SetAdminState(h, backend.AdminDrain); err != nil {
			t.Fatal(err)
		}
	}
	if snap := p.Snapshot(); snap.Panic {
		t.Fatal("panic mode with the only ready backend usable")
	}
	if n := picks(t, p, 30); n[hosts[0]] != 30 {
		t.Fatalf("picks %v, want all on %s", n, hosts[0])
	}
	// Panic mode on and off are events of the pool.
	var got []string
	for _, e := range log.Since(0, 0) {
		if e.Kind == events.KindPanicMode {
			if e.Pool != "default" || e.Backend != "" {
				t.Errorf("panic_mode event %+v: want pool default, no backend", e)
			}
			got = append(got, e.Message)
		}
	}
	if len(got) != 2 || !strings.HasPrefix(got[0], "on: 1 of 4 backends usable") || !strings.HasPrefix(got[1], "off: 1 of 2") {
		t.Fatalf("panic_mode events %q", got)
	}
}

// TestRuntimeWeightExact: a weight change takes effect on the next pick and
// is exact for weighted_round_robin: every window of sum(weights) picks has
// each backend exactly weight times, in nginx's smooth order.
func TestRuntimeWeightExact(t *testing.T) {
	hosts := hostsN(3)
	p, _ := testPool(t, testCfg(hosts, func(c *config.Pool) { c.Strategy = "weighted_round_robin" }), nil)
	if n := picks(t, p, 3); n[hosts[0]] != 1 || n[hosts[1]] != 1 || n[hosts[2]] != 1 {
		t.Fatalf("equal weights: %v", n)
	}
	st, err := p.SetWeight(hosts[1], 3)
	if err != nil {
		t.Fatal(err)
	}
	if st.Weight != 3 || st.EffWeight != 3 {
		t.Fatalf("status weight %d effective %d, want 3", st.Weight, st.EffWeight)
	}
	snap := p.Snapshot()
	// nginx smooth WRR over 1,3,1: b a b c b.
	want := []string{hosts[1], hosts[0], hosts[1], hosts[2], hosts[1]}
	for cycle := 0; cycle < 200; cycle++ {
		for i, w := range want {
			b, err := snap.Picker.Pick(&balance.Request{})
			if err != nil {
				t.Fatal(err)
			}
			if b.Host != w {
				t.Fatalf("cycle %d pick %d: %s, want %s (sequence b a b c b)", cycle, i, b.Host, w)
			}
		}
	}
	// Out of range is refused and changes nothing.
	for _, w := range []int{0, -1, 1001} {
		if _, err := p.SetWeight(hosts[1], w); err == nil || !strings.Contains(err.Error(), "1-1000") {
			t.Fatalf("SetWeight(%d) = %v, want a range error", w, err)
		}
	}
	if p.Statuses()[1].Weight != 3 {
		t.Fatal("a refused weight changed the weight")
	}
}

// TestRuntimeStateAcrossReload: the admin state survives every reload that
// keeps the backend; the runtime weight survives while the file keeps the
// backend's weight, and the file's weight wins once it changes (also after
// the file goes back). A backend removed and added again starts afresh.
func TestRuntimeStateAcrossReload(t *testing.T) {
	hosts := hostsN(3)
	cfg := func(wB int) *config.Pool {
		return testCfg(hosts, func(c *config.Pool) {
			c.Strategy = "weighted_round_robin"
			c.Backends[1].Weight = wB
		})
	}
	p, _ := testPool(t, cfg(1), nil)
	if _, err := p.SetWeight(hosts[1], 5); err != nil {
		t.Fatal(err)
	}
	if _, err := p.SetAdminState(hosts[2], backend.AdminDrain); err != nil {
		t.Fatal(err)
	}
	p.Update(cfg(1), time.Minute, nil) // unchanged file
	s := p.Statuses()
	if s[1].Weight != 5 || s[2].AdminState != "drain" {
		t.Fatalf("after an unchanged reload: weight %d, admin_state %s; want 5, drain", s[1].Weight, s[2].AdminState)
	}
	if n := picks(t, p, 600); n[hosts[2]] != 0 || n[hosts[1]] != 500 || n[hosts[0]] != 100 {
		t.Fatalf("picks after reload %v: want 500/100 and none on the drained backend", n)
	}
	p.Update(cfg(2), time.Minute, nil) // the file changes B's weight
	s = p.Statuses()
	if s[1].Weight != 2 || s[2].AdminState != "drain" {
		t.Fatalf("after the file changed the weight: weight %d, admin_state %s; want 2 (the file's), drain", s[1].Weight, s[2].AdminState)
	}
	p.Update(cfg(1), time.Minute, nil) // and back: the runtime weight is gone
	if w := p.Statuses()[1].Weight; w != 1 {
		t.Fatalf("file back to 1: weight %d, want 1", w)
	}
	// Removed, then added again: a new backend, ready.
	p.Update(testCfg(hosts[:2], nil), time.Minute, nil)
	p.Update(cfg(1), time.Minute, nil)
	if s := p.Statuses()[2]; s.AdminState != "ready" {
		t.Fatalf("re-added backend: admin_state %s, want ready", s.AdminState)
	}
}

// TestEnableStartsSlowStart: enabling a drained backend ramps it like a
// health recovery.
func TestEnableStartsSlowStart(t *testing.T) {
	hosts := hostsN(2)
	p, clk := testPool(t, testCfg(hosts, func(c *config.Pool) {
		c.Strategy = "weighted_round_robin"
		c.SlowStart = 10 * time.Second
	}), nil)
	if _, err := p.SetAdminState(hosts[0], backend.AdminDrain); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Minute)
	if _, err := p.SetAdminState(hosts[0], backend.AdminReady); err != nil {
		t.Fatal(err)
	}
	if w := weights(p); w[0] != 1 || w[1] != 16 {
		t.Fatalf("just enabled: effective weights %v, want [1 16] (1/16 of a share)", w)
	}
	clk.Advance(5 * time.Second)
	rebuild(p)
	if w := weights(p); w[0] != 8 {
		t.Fatalf("half way: effective weights %v, want 8 for the enabled backend", w)
	}
	// Enabling a backend that is ready does not restart its ramp.
	clk.Advance(10 * time.Second)
	rebuild(p)
	if _, err := p.SetAdminState(hosts[0], backend.AdminReady); err != nil {
		t.Fatal(err)
	}
	if w := weights(p); w[0] != w[1] {
		t.Fatalf("enable of a ready backend ramped it again: %v", w)
	}
}

// TestControlErrors: an unknown backend is ErrNotFound; a host:port served
// under both schemes is ErrConflict (the address does not say which).
func TestControlErrors(t *testing.T) {
	hosts := hostsN(2)
	cfg := testCfg(hosts, nil)
	cfg.Backends = append(cfg.Backends, config.Backend{URL: "https://" + hosts[0], Scheme: "https", Host: hosts[0], Weight: 1})
	p, _ := testPool(t, cfg, nil)
	if _, err := p.SetAdminState("127.0.0.1:9", backend.AdminDrain); !errors.Is(err, ErrNotFound) ||
		!strings.Contains(err.Error(), `"127.0.0.1:9"`) || !strings.Contains(err.Error(), `"default"`) {
		t.Fatalf("unknown backend: %v, want ErrNotFound naming pool and backend", err)
	}
	if _, err := p.SetWeight(hosts[0], 2); !errors.Is(err, ErrConflict) {
		t.Fatalf("ambiguous backend: %v, want ErrConflict", err)
	}
	if _, err := p.WaitIdle(context.Background(), "nope:1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("WaitIdle of an unknown backend: %v", err)
	}
}

// TestWaitIdle: the wait ends when the last request in flight releases, or
// with the count left when the context ends, or with ErrConflict when the
// backend is enabled meanwhile.
func TestWaitIdle(t *testing.T) {
	hosts := hostsN(2)
	p, _ := testPool(t, testCfg(hosts, nil), nil)
	st := member(p, 0).State
	st.Acquire()
	st.Acquire()
	if _, err := p.SetAdminState(hosts[0], backend.AdminDrain); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	n, err := p.WaitIdle(ctx, hosts[0])
	cancel()
	if err != nil || n != 2 {
		t.Fatalf("WaitIdle with 2 in flight until the deadline = %d, %v; want 2, nil", n, err)
	}
	done := make(chan int64, 1)
	go func() {
		n, _ := p.WaitIdle(context.Background(), hosts[0])
		done <- n
	}()
	st.Release(false)
	select {
	case n := <-done:
		t.Fatalf("WaitIdle returned %d with one request still in flight", n)
	case <-time.After(50 * time.Millisecond):
	}
	st.Release(false)
	select {
	case n := <-done:
		if n != 0 {
			t.Fatalf("WaitIdle = %d, want 0", n)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("WaitIdle did not return after the last release")
	}
	// Enabled while waiting.
	st.Acquire()
	defer st.Release(false)
	errc := make(chan error, 1)
	go func() {
		_, err := p.WaitIdle(context.Background(), hosts[0])
		errc <- err
	}()
	if _, err := p.SetAdminState(hosts[0], backend.AdminReady); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, ErrConflict) {
			t.Fatalf("WaitIdle after enable = %v, want ErrConflict", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("WaitIdle did not notice the enable")
	}
}

// TestAdminActionsRecorded: every action is counted and recorded as an
// event of its backend, which Status carries.
func TestAdminActionsRecorded(t *testing.T) {
	hosts := hostsN(2)
	m, reg := newMetrics()
	p, _ := testPool(t, testCfg(hosts, nil), m)
	log := events.New(events.Capacity, nil)
	p.opt.Events = log
	p.SetAdminState(hosts[0], backend.AdminDrain)
	p.SetAdminState(hosts[0], backend.AdminDisabled)
	p.SetAdminState(hosts[0], backend.AdminReady)
	p.SetWeight(hosts[0], 7)
	p.SetAdminState(hosts[0], backend.AdminDrain)
	for action, want := range map[string]float64{"drain": 2, "disable": 1, "enable": 1, "weight": 1} {
		if got := testutil.Counter(t, reg, "fulcrum_admin_actions_total", "action", action); got != want {
			t.Errorf("fulcrum_admin_actions_total{action=%q} = %v, want %v", action, got, want)
		}
	}
	evs := p.Statuses()[0].Events
	wantMsgs := []string{"disable (was drain)", "enable (was disabled)", "weight 1 to 7", "drain (was ready)"}
	if len(evs) != 5 {
		t.Fatalf("events %+v, want the last 5", evs)
	}
	for i, w := range wantMsgs {
		if e := evs[i+1]; e.Kind != events.KindAdmin || e.Message != w || e.Pool != "default" || e.Backend != hosts[0] {
			t.Errorf("event %d = %+v, want admin %q", i+1, e, w)
		}
	}
	if evs := p.Statuses()[1].Events; evs == nil || len(evs) != 0 {
		t.Fatalf("untouched backend: events %v, want []", evs)
	}
}

// TestDownReasonAndEvents: a down transition records its reason and a down
// event, an up clears it; a passive ejection names the failures and the
// last error (a real refused connection) and records an ejected event.
func TestDownReasonAndEvents(t *testing.T) {
	hosts := hostsN(4)
	p, log := eventPool(t, testCfg(hosts, nil))
	m := member(p, 0)
	m.State.SetDownDetail("GET /health returned 503")
	setHealth(p, 0, false)
	if s := p.Statuses()[0]; s.DownReason == nil || *s.DownReason != "GET /health returned 503" {
		t.Fatalf("down_reason %v", s.DownReason)
	}
	setHealth(p, 0, true)
	if s := p.Statuses()[0]; s.DownReason != nil {
		t.Fatalf("up: down_reason %q, want null", *s.DownReason)
	}
	_, err := net.Dial("tcp", testutil.ClosedAddr(t))
	if err == nil {
		t.Fatal("dial to a closed address succeeded")
	}
	m1 := p.Snapshot().Members[1]
	for i := 0; i < 3; i++ { // passive max_fails is 3
		p.ObserveFailure(m1, err)
	}
	s := p.Statuses()[1]
	if !s.Ejected || s.DownReason == nil || *s.DownReason != "ejected after 3 failures: connect: connection refused" {
		t.Fatalf("ejected %v, down_reason %v", s.Ejected, s.DownReason)
	}
	m2 := p.Snapshot().Members[2]
	p.ObserveResponse(m2, 200, false)
	for i := 0; i < 3; i++ {
		p.ObserveResponse(m2, 503, true)
	}
	// Two of four ejected is the cap; this one counts.
	if s := p.Statuses()[2]; s.DownReason == nil || *s.DownReason != "ejected after 3 failures: HTTP 503" {
		t.Fatalf("5xx ejection: down_reason %v", s.DownReason)
	}
	var kinds []string
	for _, e := range log.Since(0, 0) {
		kinds = append(kinds, e.Kind+" "+e.Backend)
	}
	want := "down " + hosts[0] + ",up " + hosts[0] + ",ejected " + hosts[1] + ",ejected " + hosts[2]
	if strings.Join(kinds, ",") != want {
		t.Fatalf("events %v, want %s", kinds, want)
	}
}

// TestStatusNamesBackendAsControl: a status's backend is the name the
// runtime control takes, also for a URL written without its port or in
// upper case (what the dashboard's buttons send).
func TestStatusNamesBackendAsControl(t *testing.T) {
	cfg := testCfg(hostsN(1), nil)
	// As config normalises http://LocalHost: lower case, default port.
	cfg.Backends = append(cfg.Backends, config.Backend{URL: "http://LocalHost", Scheme: "http", Host: "localhost:80", Weight: 1})
	p, _ := testPool(t, cfg, nil)
	var name string
	for _, st := range p.Statuses() {
		if st.URL == "http://LocalHost" {
			name = st.Backend
		}
	}
	if name != "localhost:80" {
		t.Fatalf("status backend %q, want localhost:80", name)
	}
	if _, err := p.SetAdminState(name, backend.AdminDrain); err != nil {
		t.Fatalf("control by the status's name: %v", err)
	}
}
