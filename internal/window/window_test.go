package window

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"fulcrum/internal/testutil"
)

func TestMain(m *testing.M) { testutil.VerifyNoLeaks(m, nil) }

// base is a whole minute, so that base+k×10s starts slot k.
var base = time.Unix(1_800_000_000-1_800_000_000%60, 0)

func TestBinBoundsContainTheirSamples(t *testing.T) {
	prevHi := time.Duration(0)
	for k := range Bins - 1 {
		lo, hi := binBounds(k)
		if lo != prevHi || hi <= lo {
			t.Fatalf("bin %d is [%v, %v), previous ended at %v", k, lo, hi, prevHi)
		}
		if hi > lo*5/4+1 && k > 0 {
			t.Fatalf("bin %d [%v, %v) spans more than a factor of 1.25", k, lo, hi)
		}
		for _, d := range []time.Duration{lo, (lo + hi) / 2, hi - 1} {
			if got := bin(d); got != k {
				t.Fatalf("bin(%v) = %d, want %d ([%v, %v))", d, got, k, lo, hi)
			}
		}
		prevHi = hi
	}
	lo, _ := binBounds(Bins - 1)
	if lo != prevHi || bin(lo) != Bins-1 || bin(time.Hour) != Bins-1 || bin(0) != 0 {
		t.Fatalf("last bin starts at %v (want %v); bin(1h) = %d", lo, prevHi, bin(time.Hour))
	}
	if lo < 60*time.Second {
		t.Fatalf("the histogram ends at %v, below a minute", lo)
	}
}

// exactQuantile is the nearest-rank q-quantile of sorted samples.
func exactQuantile(sorted []time.Duration, q float64) time.Duration {
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(i, 0)]
}

// TestQuantileAccuracy records known distributions and compares the
// estimated p50 and p99 with the exact ones.
func TestQuantileAccuracy(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	dists := map[string]func() time.Duration{
		"uniform 1-10ms": func() time.Duration { return time.Millisecond + time.Duration(rnd.Int64N(int64(9*time.Millisecond))) },
		"log-uniform 50us-2s": func() time.Duration {
			return time.Duration(math.Exp(math.Log(50e3) + rnd.Float64()*(math.Log(2e9)-math.Log(50e3))))
		},
		// Mostly fast with a slow tail: what p99 is for.
		"bimodal 2ms + 5% 300ms": func() time.Duration {
			if rnd.IntN(100) < 5 {
				return 300*time.Millisecond + time.Duration(rnd.NormFloat64()*float64(20*time.Millisecond))
			}
			return 2*time.Millisecond + time.Duration(rnd.NormFloat64()*float64(200*time.Microsecond))
		},
		"exponential mean 5ms": func() time.Duration { return time.Duration(rnd.ExpFloat64() * float64(5*time.Millisecond)) },
	}
	for name, gen := range dists {
		t.Run(name, func(t *testing.T) {
			r := New(base)
			now := base.Add(30 * time.Second)
			samples := make([]time.Duration, 20000)
			for i := range samples {
				samples[i] = max(gen(), time.Microsecond)
				r.Record(now, samples[i], false)
			}
			slices.Sort(samples)
			st := r.Stats(now)
			if st.Requests != uint64(len(samples)) || st.Errors != 0 {
				t.Fatalf("requests %d errors %d, want %d and 0", st.Requests, st.Errors, len(samples))
			}
			for _, c := range []struct {
				q   float64
				got time.Duration
			}{{0.50, st.P50}, {0.99, st.P99}} {
				want := exactQuantile(samples, c.q)
				if rel := math.Abs(float64(c.got-want)) / float64(want); rel > 0.06 {
					t.Errorf("p%.0f = %v, exact %v (off by %.1f%%)", c.q*100, c.got, want, rel*100)
				}
			}
		})
	}
}

func TestRatesAndExpiry(t *testing.T) {
	r := New(base)
	// One request per second for 90 s, every fifth one failing with 10 ms.
	for s := range 90 {
		now := base.Add(time.Duration(s) * time.Second)
		r.Record(now, 10*time.Millisecond, s%5 == 0)
	}
	now := base.Add(89*time.Second + 500*time.Millisecond)
	st := r.Stats(now)
	// The window is slots 3..7 whole (seconds 30..79) and slot 8 up to
	// 89.5: seconds 30..89, 60 requests over 59.5 s.
	if st.Requests != 60 || st.Errors != 12 {
		t.Fatalf("requests %d errors %d, want 60 and 12", st.Requests, st.Errors)
	}
	if st.Span != 59*time.Second+500*time.Millisecond {
		t.Fatalf("span %v", st.Span)
	}
	if rps := st.RPS(); math.Abs(rps-60/59.5) > 1e-9 {
		t.Fatalf("rps %v", rps)
	}
	if er := st.ErrorRate(); er != 0.2 {
		t.Fatalf("error rate %v", er)
	}
	if st.P50 < 9*time.Millisecond || st.P50 > 11*time.Millisecond || st.P99 < 9*time.Millisecond || st.P99 > 11*time.Millisecond {
		t.Fatalf("p50 %v p99 %v, want about 10ms", st.P50, st.P99)
	}
	// A minute without traffic empties the window; a slot reused a minute
	// later starts from zero.
	if st := r.Stats(now.Add(65 * time.Second)); st.Requests != 0 || st.Errors != 0 || st.P50 != 0 || st.P99 != 0 {
		t.Fatalf("after a quiet minute: %+v", st)
	}
	later := now.Add(60 * time.Second)
	r.Record(later, -1, true)
	if st := r.Stats(later); st.Requests != 1 || st.Errors != 1 || st.P50 != 0 {
		t.Fatalf("one failed request without latency after a quiet minute: %+v", st)
	}
}

func TestYoungRingSpan(t *testing.T) {
	r := New(base.Add(10 * time.Second))
	now := base.Add(14 * time.Second)
	for range 40 {
		r.Record(now, time.Millisecond, false)
	}
	st := r.Stats(now)
	if st.Span != 4*time.Second || st.RPS() != 10 {
		t.Fatalf("a 4 s old ring: span %v rps %v, want 4s and 10", st.Span, st.RPS())
	}
	if st := New(now).Stats(now); st.Span != time.Second || st.RPS() != 0 {
		t.Fatalf("a new ring: %+v", st)
	}
}

// TestConcurrentRecording records from several goroutines across slot
// rotations while another reads: no count is lost or doubled.
func TestConcurrentRecording(t *testing.T) {
	const goroutines, perG = 4, 5000
	r := New(base)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var reads sync.WaitGroup
	reads.Add(1)
	go func() {
		defer reads.Done()
		for i := 0; i < 100000; i++ {
			select {
			case <-stop:
				return
			default:
			}
			r.Stats(base.Add(time.Duration(i%50) * time.Second))
		}
	}()
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perG {
				// Times sweep 0..50 s, so every goroutine rotates five
				// slots, interleaved with the others.
				now := base.Add(time.Duration(i) * 50 * time.Second / perG)
				r.Record(now, time.Duration(g+1)*time.Millisecond, i%10 == 0)
			}
		}()
	}
	wg.Wait()
	close(stop)
	reads.Wait()
	st := r.Stats(base.Add(55 * time.Second))
	if st.Requests != goroutines*perG || st.Errors != goroutines*perG/10 {
		t.Fatalf("requests %d errors %d, want %d and %d", st.Requests, st.Errors, goroutines*perG, goroutines*perG/10)
	}
	if st.P50 < time.Millisecond || st.P99 > 5*time.Millisecond {
		t.Fatalf("p50 %v p99 %v, want within 1-4ms", st.P50, st.P99)
	}
}

func TestRecordAllocatesNothing(t *testing.T) {
	r := New(base)
	now := base.Add(time.Second)
	if n := testing.AllocsPerRun(1000, func() { r.Record(now, time.Millisecond, false) }); n != 0 {
		t.Fatalf("Record: %v allocs", n)
	}
	if n := testing.AllocsPerRun(100, func() { r.Stats(now) }); n != 0 {
		t.Fatalf("Stats: %v allocs", n)
	}
}

// The request path passes a time it already has (the end of the wait for
// the response head), so the benchmarks do not read the clock.
func BenchmarkRecord(b *testing.B) {
	now := time.Now()
	r := New(now)
	b.ReportAllocs()
	for b.Loop() {
		r.Record(now, 300*time.Microsecond, false)
	}
}

func BenchmarkRecordParallel(b *testing.B) {
	now := time.Now()
	r := New(now)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r.Record(now, 300*time.Microsecond, false)
		}
	})
}

func BenchmarkStats(b *testing.B) {
	r := New(time.Now())
	for i := range 10000 {
		r.Record(time.Now(), time.Duration(i)*time.Microsecond, i%50 == 0)
	}
	b.ReportAllocs()
	for b.Loop() {
		r.Stats(time.Now())
	}
}

func TestStatsJSON(t *testing.T) {
	st := Stats{Requests: 120, Errors: 3, Span: 60 * time.Second, P50: 1234567 * time.Nanosecond, P99: 20 * time.Millisecond}
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"requests":120,"errors":3,"rps":2,"error_rate":0.025,"p50_ms":1.235,"p99_ms":20}`
	if string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
	if !json.Valid(b) {
		t.Fatal("invalid JSON")
	}
}
