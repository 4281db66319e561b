package health_test

import (
	"errors"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"fulcrum/internal/backend"
	"fulcrum/internal/config"
	"fulcrum/internal/health"
	"fulcrum/internal/health/healthtest"
	"fulcrum/internal/testutil"
)

// TestCheckerRiseFall drives one target through down and up with a scripted
// backend, one check per Advance.
func TestCheckerRiseFall(t *testing.T) {
	srv := newScripted(t, 200)
	tg := srv.target("b1")
	st := tg.State
	logs := &testutil.LogBuffer{}
	_, clk, rec := startCheckerOpts(t, httpCfg(10*time.Second, 2, 3), health.Options{Logger: testLogger(t, logs)}, tg)

	// round advances to the next check and returns its outcome plus any
	// transition, once the target is parked again.
	round := func(d time.Duration) (event, []event) {
		t.Helper()
		park(t, clk, 1)
		clk.Advance(d)
		e := rec.nextCheck("b1")
		park(t, clk, 1)
		return e, rec.pending()
	}

	// First check at 0.5s (half of min(interval, 1s)); the backend starts up.
	if !st.Healthy() {
		t.Fatal("a new backend must count as up before its first check")
	}
	if e, tr := round(500 * time.Millisecond); !e.ok || len(tr) != 0 {
		t.Fatalf("first check: %+v %+v", e, tr)
	}
	at, ok, msg := st.LastCheck()
	if !at.Equal(epoch.Add(500*time.Millisecond)) || !ok || msg != "HTTP 200" {
		t.Fatalf("LastCheck = %v %v %q", at, ok, msg)
	}

	srv.set(503)
	for i := 1; i <= 2; i++ {
		e, tr := round(10 * time.Second)
		if e.ok || len(tr) != 0 || !st.Healthy() {
			t.Fatalf("failure %d: %+v %+v healthy=%v (fall is 3)", i, e, tr, st.Healthy())
		}
		var se *health.StatusError
		if !errors.As(e.err, &se) || se.Code != 503 {
			t.Fatalf("err = %v", e.err)
		}
	}
	e, tr := round(10 * time.Second)
	if e.ok || len(tr) != 1 || tr[0].ok || st.Healthy() {
		t.Fatalf("third failure: %+v %+v healthy=%v", e, tr, st.Healthy())
	}
	if !strings.Contains(tr[0].reason, "3 consecutive failed checks: GET /health returned 503") {
		t.Fatalf("reason %q", tr[0].reason)
	}
	// The detail names the check's request and its answer.
	if tr[0].detail != "GET /health returned 503" || st.DownReason(clk.Now()) != tr[0].detail {
		t.Fatalf("detail %q, DownReason %q, want \"GET /health returned 503\"", tr[0].detail, st.DownReason(clk.Now()))
	}
	if _, ok, msg := st.LastCheck(); ok || msg != "HTTP 503" {
		t.Fatalf("LastCheck ok=%v msg=%q", ok, msg)
	}
	// Still failing: no repeated transition.
	if e, tr := round(10 * time.Second); e.ok || len(tr) != 0 {
		t.Fatalf("%+v %+v", e, tr)
	}

	srv.set(200)
	if e, tr := round(10 * time.Second); !e.ok || len(tr) != 0 || st.Healthy() {
		t.Fatalf("first success: %+v %+v healthy=%v (rise is 2)", e, tr, st.Healthy())
	}
	e, tr = round(10 * time.Second)
	if !e.ok || len(tr) != 1 || !tr[0].ok || !st.Healthy() {
		t.Fatalf("second success: %+v %+v healthy=%v", e, tr, st.Healthy())
	}
	if !strings.Contains(tr[0].reason, "2 consecutive passed checks") {
		t.Fatalf("reason %q", tr[0].reason)
	}
	if tr[0].returned || st.DownReason(clk.Now()) != "" {
		t.Fatalf("up: returned=%v DownReason %q, want false and \"\"", tr[0].returned, st.DownReason(clk.Now()))
	}
	if got := srv.count(); got != 7 {
		t.Fatalf("backend saw %d checks, want 7", got)
	}
	// The backend is named by host:port, its metrics label, not by its key.
	want := []string{
		`level=WARN msg="backend down" backend=` + tg.Host + ` reason="3 consecutive failed checks: GET /health returned 503"`,
		`level=INFO msg="backend up" backend=` + tg.Host + ` reason="2 consecutive passed checks: HTTP 200"`,
	}
	if got := logs.Lines(); !slices.Equal(got, want) {
		t.Fatalf("log lines:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestCheckerIntervalJitter checks the schedule: nothing before the jittered
// interval has passed, a check right when it has.
func TestCheckerIntervalJitter(t *testing.T) {
	srv := newScripted(t, 200)
	clk := healthtest.NewClock(epoch)
	rec := newRecorder(t)
	draws := []float64{0.25, 0} // first delay 0.25*1s, then 0.9*interval
	rnd := func() float64 {
		if len(draws) == 0 {
			return 0.5
		}
		u := draws[0]
		draws = draws[1:]
		return u
	}
	cfg := httpCfg(10*time.Second, 1, 1)
	c := health.NewChecker(cfg, rec, health.Options{Clock: clk, Rand: rnd, Logger: testLogger(t, nil)})
	c.Update(cfg, []health.Target{srv.target("b")})
	c.Start(t.Context())
	defer c.Stop()

	park(t, clk, 1)
	clk.Advance(249 * time.Millisecond)
	park(t, clk, 1)
	rec.none()
	clk.Advance(time.Millisecond)
	rec.nextCheck("b")
	park(t, clk, 1)
	clk.Advance(9*time.Second - time.Millisecond)
	park(t, clk, 1)
	rec.none()
	clk.Advance(time.Millisecond)
	rec.nextCheck("b")
}

// TestHungTargetDoesNotStallOthers: while one backend hangs inside its check,
// another keeps being checked on schedule.
func TestHungTargetDoesNotStallOthers(t *testing.T) {
	hung, arrived, release := hangServer(t)
	good := newScripted(t, 200)
	cfg := httpCfg(time.Second, 1, 1)
	cfg.Timeout = time.Minute // real time: the hang outlasts the test
	hungTarget := health.Target{Key: "hung", Host: hung.Listener.Addr().String(), Scheme: "http", State: backend.NewState(epoch)}
	c, clk, rec := startChecker(t, cfg, hungTarget, good.target("good"))

	park(t, clk, 2)
	clk.Advance(500 * time.Millisecond)
	<-arrived
	if e := rec.nextCheck("good"); !e.ok {
		t.Fatalf("%+v", e)
	}
	for i := 0; i < 5; i++ {
		park(t, clk, 1) // only "good" parks: "hung" is stuck in its check
		clk.Advance(time.Second)
		if e := rec.nextCheck("good"); !e.ok {
			t.Fatalf("round %d: %+v", i, e)
		}
	}
	if got := good.count(); got != 6 {
		t.Fatalf("good backend checked %d times, want 6", got)
	}
	// Stop aborts the hung check without reporting it.
	c.Stop()
	release()
	for _, e := range rec.pending() {
		if e.key == "hung" {
			t.Fatalf("hung target reported %+v", e)
		}
	}
}

// TestCheckerTimeoutFails: a check that times out counts as a failure with a
// "timeout after" message.
func TestCheckerTimeoutFails(t *testing.T) {
	hung, _, _ := hangServer(t)
	cfg := httpCfg(time.Second, 1, 1)
	cfg.Timeout = 50 * time.Millisecond
	tg := health.Target{Key: "hung", Host: hung.Listener.Addr().String(), Scheme: "http", State: backend.NewState(epoch)}
	_, clk, rec := startChecker(t, cfg, tg)
	park(t, clk, 1)
	clk.Advance(500 * time.Millisecond)
	e := rec.nextCheck("hung")
	var te *health.TimeoutError
	if e.ok || !errors.As(e.err, &te) {
		t.Fatalf("%+v", e)
	}
	tr := rec.next()
	if tr.check || tr.ok || !strings.Contains(tr.reason, "timeout after 50ms") || tr.detail != "timeout after 50ms" {
		t.Fatalf("transition %+v", tr)
	}
	if _, ok, msg := tg.State.LastCheck(); ok || msg != "timeout after 50ms" {
		t.Fatalf("LastCheck ok=%v msg=%q", ok, msg)
	}
}

func TestProbeNow(t *testing.T) {
	srv := newScripted(t, 200)
	c, clk, rec := startChecker(t, httpCfg(time.Hour, 1, 1), srv.target("b"))
	park(t, clk, 1)
	c.ProbeNow("b")
	rec.nextCheck("b")
	c.ProbeNow("unknown") // no-op
	park(t, clk, 1)
	rec.none()
	if got := srv.count(); got != 1 {
		t.Fatalf("%d checks, want 1", got)
	}
}

// TestUpdate: targets are added, removed and kept by key; kept ones keep their
// counters; a new config applies from the next check.
func TestUpdate(t *testing.T) {
	a, b, cSrv := newScripted(t, 503), newScripted(t, 200), newScripted(t, 200)
	cfg := httpCfg(time.Second, 1, 3)
	ta, tb := a.target("a"), b.target("b")
	c, clk, rec := startChecker(t, cfg, ta, tb)

	// Two rounds: "a" has two failures of the three it needs to go down.
	park(t, clk, 2)
	clk.Advance(500 * time.Millisecond)
	for i := 0; i < 2; i++ {
		if e := rec.next(); !e.check {
			t.Fatalf("%+v", e)
		}
	}
	park(t, clk, 2)
	clk.Advance(time.Second)
	for i := 0; i < 2; i++ {
		if e := rec.next(); !e.check {
			t.Fatalf("%+v", e)
		}
	}
	park(t, clk, 2)

	// Reload: drop "b", add "c", keep "a" (given a fresh State, which is
	// ignored: "a" keeps its own). Also add a header to the config.
	cfg2 := cfg
	cfg2.Headers = map[string]string{"X-Reloaded": "1"}
	ta2 := ta
	ta2.State = backend.NewState(epoch)
	created := clk.Created()
	c.Update(cfg2, []health.Target{ta2, cSrv.target("c")})
	bHits := b.count()
	// Wait until "a" (woken by the update) and "c" (new) wait on new timers
	// and "b"'s is gone: a goroutine that computes its timer's duration
	// before an Advance and creates the timer after it would park late.
	if !clk.WaitUntil(func(pending, n int) bool { return n >= created+2 && pending == 2 }, 10*time.Second) {
		t.Fatalf("targets did not park after the update (%d pending)", clk.Pending())
	}

	clk.Advance(time.Second) // "a" is due (1s after its last check), "c" too (0.5s after the reload)
	got := map[string][]event{}
	for len(got["a"]) < 2 || len(got["c"]) < 1 {
		e := rec.next()
		got[e.key] = append(got[e.key], e)
	}
	if e := got["a"]; !e[0].check || e[0].ok || e[1].check || e[1].ok {
		t.Fatalf("a: %+v, want its third failure and a down transition", e)
	}
	if ta.State.Healthy() {
		t.Fatal("a's original State should be down")
	}
	if !ta2.State.Healthy() {
		t.Fatal("the State given on reload for a kept key must not be used")
	}
	if e := got["c"]; !e[0].check || !e[0].ok {
		t.Fatalf("c: %+v", e)
	}
	if len(got["b"]) != 0 {
		t.Fatalf("removed target reported %+v", got["b"])
	}
	cSrv.mu.Lock()
	hdr := cSrv.last.Header.Get("X-Reloaded")
	cSrv.mu.Unlock()
	if hdr != "1" {
		t.Fatal("new config not applied")
	}

	for i := 0; i < 3; i++ {
		park(t, clk, 2)
		clk.Advance(time.Second)
		seen := map[string]bool{}
		for !seen["a"] || !seen["c"] {
			e := rec.next()
			if e.key == "b" {
				t.Fatalf("removed target reported %+v", e)
			}
			seen[e.key] = true
		}
	}
	if b.count() != bHits {
		t.Fatal("removed target still checked")
	}
}

// TestIntervalChangePullsCheckForward: lowering Interval on reload does not
// wait out the old, longer interval.
func TestIntervalChangePullsCheckForward(t *testing.T) {
	srv := newScripted(t, 200)
	tg := srv.target("b")
	c, clk, rec := startChecker(t, httpCfg(time.Hour, 1, 1), tg)
	park(t, clk, 1)
	clk.Advance(500 * time.Millisecond)
	rec.nextCheck("b")
	park(t, clk, 1)
	created := clk.Created()
	c.Update(httpCfg(2*time.Second, 1, 1), []health.Target{tg})
	if !clk.WaitUntil(func(pending, n int) bool { return n > created && pending == 1 }, 10*time.Second) {
		t.Fatalf("target did not park again after the update (%d pending)", clk.Pending())
	}
	clk.Advance(2 * time.Second)
	rec.nextCheck("b")
}

// TestStopLeavesNoGoroutines: Stop returns only after every target goroutine
// has exited, including one stuck in a hung check.
func TestStopLeavesNoGoroutines(t *testing.T) {
	hung, arrived, _ := hangServer(t)
	good := newScripted(t, 200)
	base := runtime.NumGoroutine()

	clk := healthtest.NewClock(epoch)
	rec := newRecorder(t)
	cfg := httpCfg(time.Second, 1, 1)
	cfg.Timeout = time.Minute
	c := health.NewChecker(cfg, rec, health.Options{Clock: clk, Rand: half, Logger: testLogger(t, nil)})
	c.Update(cfg, []health.Target{
		{Key: "hung", Host: hung.Listener.Addr().String(), Scheme: "http", State: backend.NewState(epoch)},
		good.target("good"),
		{Key: "tcp-closed", Host: testutil.ClosedAddr(t), Scheme: "http", State: backend.NewState(epoch)},
	})
	c.Start(t.Context())
	park(t, clk, 3)
	clk.Advance(500 * time.Millisecond)
	<-arrived
	for e := rec.next(); e.key != "good"; e = rec.next() {
	}
	c.Stop()
	c.Stop() // idempotent
	if n, ok := testutil.WaitGoroutines(base, 5*time.Second); !ok {
		buf := make([]byte, 1<<20)
		t.Fatalf("%d goroutines after Stop, %d before Start\n%s", n, base, buf[:runtime.Stack(buf, true)])
	}
	// Start after Stop does nothing.
	c.Start(t.Context())
	if clk.Pending() != 0 {
		t.Fatal("Start after Stop launched targets")
	}
}

// TestStartIsIdempotentAndContextStops: a second Start is ignored and
// cancelling Start's context stops the targets.
func TestStartIsIdempotentAndContextStops(t *testing.T) {
	srv := newScripted(t, 200)
	clk := healthtest.NewClock(epoch)
	rec := newRecorder(t)
	cfg := httpCfg(time.Second, 1, 1)
	c := health.NewChecker(cfg, rec, health.Options{Clock: clk, Rand: half, Logger: testLogger(t, nil)})
	c.Update(cfg, []health.Target{srv.target("b")})
	ctx, cancel := contextWithCancel(t)
	c.Start(ctx)
	c.Start(ctx)
	park(t, clk, 1)
	if clk.Pending() != 1 {
		t.Fatalf("%d targets running, want 1", clk.Pending())
	}
	cancel()
	c.Stop() // returns once the goroutine has seen the cancellation
	if clk.Pending() != 0 {
		t.Fatal("timer left pending")
	}
}

// TestReadmission: a passive ejection ends only when an active check passes
// after the back-off; ProbeAt runs that check right at the end.
func TestReadmission(t *testing.T) {
	srv := newScripted(t, 200)
	tg := srv.target("b")
	st := tg.State
	c, clk, rec := startChecker(t, httpCfg(time.Hour, 1, 1), tg)
	park(t, clk, 1)
	clk.Advance(500 * time.Millisecond)
	rec.nextCheck("b")
	park(t, clk, 1)

	p := health.NewPassive(config.Passive{MaxFails: 1, EjectFor: 30 * time.Second, MaxEjectFor: time.Minute}, clk)
	if !p.Observe(st, true) {
		t.Fatal("not ejected")
	}
	until := st.EjectedUntil()
	if !until.Equal(clk.Now().Add(30 * time.Second)) {
		t.Fatalf("until %v", until)
	}
	if st.Usable(clk.Now()) {
		t.Fatal("ejected backend usable")
	}
	c.ProbeAt("b", until)

	park(t, clk, 1)
	clk.Advance(30*time.Second - time.Millisecond)
	park(t, clk, 1)
	rec.none()
	if !st.Ejected(clk.Now()) {
		t.Fatal("ejection ended early")
	}
	// A passing check before the back-off ends does not readmit.
	c.ProbeNow("b")
	if e := rec.nextCheck("b"); !e.ok {
		t.Fatalf("%+v", e)
	}
	park(t, clk, 1)
	if !st.Ejected(clk.Now()) || len(rec.pending()) != 0 {
		t.Fatal("readmitted before the back-off ended")
	}

	clk.Advance(time.Millisecond)
	rec.nextCheck("b")
	tr := rec.next()
	if tr.check || !tr.ok || !tr.returned || !strings.Contains(tr.reason, "ejection ended") {
		t.Fatalf("%+v", tr)
	}
	if st.Ejected(clk.Now()) || !st.Usable(clk.Now()) || !st.LastReadmit().Equal(clk.Now()) {
		t.Fatal("not readmitted")
	}
	if st.ConsecutiveFailures().Load() != 0 {
		t.Fatal("failure run not reset on readmission")
	}
}

// TestReadmissionWaitsForPassingCheck: if the check at the end of the back-off
// fails, the backend stays out until a later check passes; it also goes down
// and comes back up with one transition each.
func TestReadmissionWaitsForPassingCheck(t *testing.T) {
	srv := newScripted(t, 200)
	tg := srv.target("b")
	st := tg.State
	c, clk, rec := startChecker(t, httpCfg(time.Hour, 1, 1), tg)
	park(t, clk, 1)
	p := health.NewPassive(config.Passive{MaxFails: 1, EjectFor: 10 * time.Second, MaxEjectFor: time.Minute}, clk)
	p.Observe(st, true)
	c.ProbeAt("b", st.EjectedUntil())
	srv.set(503)
	park(t, clk, 1)
	clk.Advance(500 * time.Millisecond) // regular first check: fails, goes down
	rec.nextCheck("b")
	if tr := rec.next(); tr.check || tr.ok {
		t.Fatalf("%+v", tr)
	}
	park(t, clk, 1)
	clk.Advance(10 * time.Second) // the probe at the end of the back-off: fails
	if e := rec.nextCheck("b"); e.ok {
		t.Fatalf("%+v", e)
	}
	park(t, clk, 1)
	if !st.Ejected(clk.Now()) || len(rec.pending()) != 0 {
		t.Fatal("a failed check readmitted the backend")
	}
	srv.set(200)
	c.ProbeNow("b")
	rec.nextCheck("b")
	tr := rec.next()
	if tr.check || !tr.ok {
		t.Fatalf("%+v", tr)
	}
	park(t, clk, 1)
	if rest := rec.pending(); len(rest) != 0 {
		t.Fatalf("more than one transition: %+v", rest)
	}
	if !st.Usable(clk.Now()) {
		t.Fatal("not usable")
	}
}

// TestEjectionEndCheckedWithoutProbeAt: once a target's goroutine has seen
// the ejection (after any check), it checks at the end of the back-off even
// if nobody called ProbeAt.
func TestEjectionEndCheckedWithoutProbeAt(t *testing.T) {
	srv := newScripted(t, 200)
	tg := srv.target("b")
	st := tg.State
	_, clk, rec := startChecker(t, httpCfg(25*time.Second, 1, 1), tg)
	park(t, clk, 1)
	clk.Advance(500 * time.Millisecond)
	rec.nextCheck("b")
	park(t, clk, 1)
	p := health.NewPassive(config.Passive{MaxFails: 1, EjectFor: 30 * time.Second, MaxEjectFor: time.Minute}, clk)
	p.Observe(st, true) // until = 30.5s
	clk.Advance(25 * time.Second)
	rec.nextCheck("b") // regular check at 25.5s: still ejected
	park(t, clk, 1)
	if !st.Ejected(clk.Now()) {
		t.Fatal("readmitted early")
	}
	clk.Advance(5 * time.Second) // 30.5s, well before the next regular check at 50.5s
	rec.nextCheck("b")
	if tr := rec.next(); !tr.ok || tr.check {
		t.Fatalf("%+v", tr)
	}
}
