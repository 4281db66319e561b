package health_test

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"fulcrum/internal/backend"
	"fulcrum/internal/config"
	"fulcrum/internal/health"
	"fulcrum/internal/health/healthtest"
)

var passiveCfg = config.Passive{
	MaxFails: 3, FailWindow: 10 * time.Second,
	EjectFor: 30 * time.Second, MaxEjectFor: 2 * time.Minute, Consider5xx: true,
}

func TestEjectionFor(t *testing.T) {
	p := health.NewPassive(passiveCfg, nil)
	for _, tc := range []struct {
		n    int
		want time.Duration
	}{
		{0, 30 * time.Second}, {1, 30 * time.Second}, {2, time.Minute}, {3, 2 * time.Minute},
		{4, 2 * time.Minute}, {1000, 2 * time.Minute},
	} {
		if got := p.EjectionFor(tc.n); got != tc.want {
			t.Errorf("EjectionFor(%d) = %v, want %v", tc.n, got, tc.want)
		}
	}
	// A cap below EjectFor counts as EjectFor; a huge cap must not overflow.
	small := health.NewPassive(config.Passive{MaxFails: 1, EjectFor: time.Minute, MaxEjectFor: time.Second}, nil)
	if got := small.EjectionFor(5); got != time.Minute {
		t.Errorf("cap below EjectFor: %v", got)
	}
	huge := health.NewPassive(config.Passive{MaxFails: 1, EjectFor: time.Hour, MaxEjectFor: 1<<63 - 1}, nil)
	if got := huge.EjectionFor(200); got != 1<<63-1 {
		t.Errorf("huge cap: %v", got)
	}
}

// failRun observes n failures and returns how many of them ejected.
func failRun(p *health.Passive, st *backend.State, n int) int {
	ej := 0
	for i := 0; i < n; i++ {
		if p.Observe(st, true) {
			ej++
		}
	}
	return ej
}

// TestPassiveBackoff: repeated ejections double up to the cap; readmission
// restarts the failure run; a healthy period forgives the count.
func TestPassiveBackoff(t *testing.T) {
	clk := healthtest.NewClock(epoch)
	p := health.NewPassive(passiveCfg, clk)
	st := backend.NewState(epoch)

	for i, want := range []time.Duration{30 * time.Second, time.Minute, 2 * time.Minute, 2 * time.Minute} {
		if n := failRun(p, st, 2); n != 0 || st.Ejected(clk.Now()) {
			t.Fatalf("ejection %d: ejected after 2 of 3 failures", i+1)
		}
		if !p.Observe(st, true) {
			t.Fatalf("ejection %d: third failure did not eject", i+1)
		}
		if got := st.EjectedUntil().Sub(clk.Now()); got != want {
			t.Fatalf("ejection %d lasts %v, want %v", i+1, got, want)
		}
		if st.Ejections().Load() != int64(i+1) {
			t.Fatalf("Ejections=%d", st.Ejections().Load())
		}
		// While ejected, outcomes do not count and nothing re-ejects.
		if failRun(p, st, 10) != 0 {
			t.Fatal("re-ejected while ejected")
		}
		// The back-off ending alone does not readmit.
		clk.Advance(want)
		if !st.Ejected(clk.Now()) || st.Usable(clk.Now()) {
			t.Fatal("back-off end readmitted without a check")
		}
		if !p.Readmit(st) {
			t.Fatal("Readmit reported not ejected")
		}
		if p.Readmit(st) {
			t.Fatal("second Readmit reported ejected")
		}
		// A short healthy spell (< MaxEjectFor) does not forgive.
		clk.Advance(time.Minute)
		p.Observe(st, false)
	}

	// Healthy for more than MaxEjectFor after the last readmission: the next
	// success forgives, and the next ejection is short again.
	clk.Advance(2*time.Minute - time.Minute + time.Second)
	p.Observe(st, false)
	if st.Ejections().Load() != 0 {
		t.Fatalf("not forgiven: Ejections=%d", st.Ejections().Load())
	}
	failRun(p, st, 3)
	if got := st.EjectedUntil().Sub(clk.Now()); got != 30*time.Second {
		t.Fatalf("after forgiveness the ejection lasts %v", got)
	}
}

func TestPassiveFailWindow(t *testing.T) {
	clk := healthtest.NewClock(epoch)
	p := health.NewPassive(passiveCfg, clk)
	st := backend.NewState(epoch)

	// Failures spread wider than the window never eject.
	for i := 0; i < 10; i++ {
		if p.Observe(st, true) {
			t.Fatalf("failure %d ejected", i)
		}
		clk.Advance(6 * time.Second)
	}
	// A success ends the run.
	st2 := backend.NewState(epoch)
	failRun(p, st2, 2)
	p.Observe(st2, false)
	if failRun(p, st2, 2) != 0 {
		t.Fatal("success did not reset the run")
	}
	if failRun(p, st2, 1) != 1 {
		t.Fatal("third consecutive failure did not eject")
	}
	// Three failures exactly at the window's edge still eject.
	st3 := backend.NewState(epoch)
	p.Observe(st3, true)
	clk.Advance(5 * time.Second)
	p.Observe(st3, true)
	clk.Advance(5 * time.Second)
	if !p.Observe(st3, true) {
		t.Fatal("3 failures within 10s did not eject")
	}
	// No window: any consecutive failures count.
	noWin := passiveCfg
	noWin.FailWindow = 0
	pn := health.NewPassive(noWin, clk)
	st4 := backend.NewState(epoch)
	for i := 0; i < 2; i++ {
		pn.Observe(st4, true)
		clk.Advance(time.Hour)
	}
	if !pn.Observe(st4, true) {
		t.Fatal("no window: third failure did not eject")
	}
}

func TestPassiveDisabled(t *testing.T) {
	off := passiveCfg
	off.MaxFails = 0
	p := health.NewPassive(off, healthtest.NewClock(epoch))
	st := backend.NewState(epoch)
	if p.Enabled() || failRun(p, st, 100) != 0 || st.Ejected(epoch) || st.ConsecutiveFailures().Load() != 0 {
		t.Fatal("disabled passive checks ejected or counted")
	}
	var nilP *health.Passive
	if nilP.Observe(st, true) || nilP.Enabled() {
		t.Fatal("nil Passive ejected")
	}
}

// TestPassiveConcurrentEjection: however many goroutines fail at once, one
// Observe reports the ejection.
func TestPassiveConcurrentEjection(t *testing.T) {
	for round := 0; round < 20; round++ {
		p := health.NewPassive(passiveCfg, healthtest.NewClock(epoch))
		st := backend.NewState(epoch)
		var ejections atomic.Int32
		var wg sync.WaitGroup
		start := make(chan struct{})
		for g := 0; g < 16; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				for i := 0; i < 50; i++ {
					if p.Observe(st, true) {
						ejections.Add(1)
					}
				}
			}()
		}
		close(start)
		wg.Wait()
		if n := ejections.Load(); n != 1 {
			t.Fatalf("round %d: %d callers saw the ejection, want 1", round, n)
		}
		if st.Ejections().Load() != 1 {
			t.Fatalf("Ejections=%d", st.Ejections().Load())
		}
	}
}

func TestPassiveObserveAllocs(t *testing.T) {
	p := health.NewPassive(passiveCfg, health.RealClock())
	st := backend.NewState(time.Now())
	allocs := testing.AllocsPerRun(1000, func() {
		p.Observe(st, false)
		p.Observe(st, true)
		p.Observe(st, false)
	})
	if allocs != 0 {
		t.Fatalf("%v allocs per Observe round", allocs)
	}
}

func BenchmarkPassiveObserve(b *testing.B) {
	p := health.NewPassive(passiveCfg, health.RealClock())
	st := backend.NewState(time.Now())
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			p.Observe(st, i%8 == 0)
			i++
		}
	})
}
