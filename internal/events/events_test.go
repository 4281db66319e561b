package events

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"fulcrum/internal/testutil"
)

func TestMain(m *testing.M) { testutil.VerifyNoLeaks(m, nil) }

// fixedClock returns a clock that advances one second per call.
func fixedClock() func() time.Time {
	var mu sync.Mutex
	t := time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("X", 3600))
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		t = t.Add(time.Second)
		return t
	}
}

func ids(evs []Event) []uint64 {
	out := make([]uint64, len(evs))
	for i, e := range evs {
		out[i] = e.ID
	}
	return out
}

func wantIDs(t *testing.T, what string, evs []Event, from, to uint64) {
	t.Helper()
	if len(evs) != int(to-from+1) && !(to < from && len(evs) == 0) {
		t.Fatalf("%s: ids %v, want %d..%d", what, ids(evs), from, to)
	}
	for i, e := range evs {
		if e.ID != from+uint64(i) {
			t.Fatalf("%s: ids %v, want %d..%d", what, ids(evs), from, to)
		}
	}
}

func TestAddAndSince(t *testing.T) {
	l := New(10, fixedClock())
	if got := l.Since(0, 0); len(got) != 0 {
		t.Fatalf("empty log: %v", got)
	}
	if l.LastID() != 0 {
		t.Fatalf("LastID of an empty log = %d", l.LastID())
	}
	ev := l.Add(KindAdmin, "web", "127.0.0.1:1", "drain (was ready)")
	if ev.ID != 1 || ev.Kind != KindAdmin || ev.Pool != "web" || ev.Backend != "127.0.0.1:1" || ev.Message != "drain (was ready)" {
		t.Fatalf("first event %+v", ev)
	}
	if ev.Time.Location() != time.UTC {
		t.Fatalf("time %v not in UTC", ev.Time)
	}
	for i := 2; i <= 5; i++ {
		l.Add(KindReload, "", "", fmt.Sprint("reload ", i))
	}
	wantIDs(t, "since 0", l.Since(0, 0), 1, 5)
	wantIDs(t, "since 2", l.Since(2, 0), 3, 5)
	wantIDs(t, "since 2 limit 2", l.Since(2, 2), 3, 4)
	wantIDs(t, "since 5", l.Since(5, 0), 6, 5)
	wantIDs(t, "since 99", l.Since(99, 0), 6, 5)
	evs := l.Since(0, 0)
	for i := 1; i < len(evs); i++ {
		if !evs[i].Time.After(evs[i-1].Time) {
			t.Fatalf("times not increasing: %v", evs)
		}
	}
}

// TestWrap checks the bound: the ring keeps the newest capacity events and a
// reader behind the ring gets what is left, in order.
func TestWrap(t *testing.T) {
	l := New(Capacity, nil)
	for i := 0; i < 2500; i++ {
		l.Add(KindUp, "p", "b", "")
	}
	if l.LastID() != 2500 {
		t.Fatalf("LastID %d", l.LastID())
	}
	wantIDs(t, "since 0 after wrap", l.Since(0, 0), 1501, 2500)
	wantIDs(t, "since 1000 (fell out)", l.Since(1000, 0), 1501, 2500)
	wantIDs(t, "since 1500", l.Since(1500, 3), 1501, 1503)
	wantIDs(t, "since 2000", l.Since(2000, 0), 2001, 2500)
	wantIDs(t, "since 2499", l.Since(2499, 100), 2500, 2500)
	// Capacity 1 and a nonsense capacity still work.
	one := New(0, nil)
	one.Add(KindUp, "", "", "a")
	one.Add(KindUp, "", "", "b")
	if got := one.Since(0, 0); len(got) != 1 || got[0].Message != "b" || got[0].ID != 2 {
		t.Fatalf("capacity 1: %+v", got)
	}
}

func TestForBackend(t *testing.T) {
	l := New(50, nil)
	for i := 0; i < 40; i++ {
		l.Add(KindDown, fmt.Sprint("pool", i%2), fmt.Sprint("b", i%4), fmt.Sprint(i))
	}
	l.Add(KindReload, "", "", "no backend")
	got := l.ForBackend("pool1", "b3", 5)
	// pool1/b3 got i = 3, 7, ..., 39: the newest five are 23..39.
	want := []string{"23", "27", "31", "35", "39"}
	if len(got) != len(want) {
		t.Fatalf("ForBackend: %+v", got)
	}
	for i, e := range got {
		if e.Message != want[i] || e.Pool != "pool1" || e.Backend != "b3" {
			t.Fatalf("ForBackend[%d] = %+v, want message %s", i, e, want[i])
		}
	}
	if got := l.ForBackend("pool0", "b3", 5); len(got) != 0 {
		t.Fatalf("pool0/b3 has no events, got %+v", got)
	}
	by := l.ByBackend("pool1", 5)
	if len(by) != 2 {
		t.Fatalf("ByBackend(pool1): %d backends, want 2 (b1, b3)", len(by))
	}
	for b, evs := range by {
		if fmt.Sprint(ids(evs)) != fmt.Sprint(ids(l.ForBackend("pool1", b, 5))) {
			t.Errorf("ByBackend[%s] = %v, ForBackend = %v", b, ids(evs), ids(l.ForBackend("pool1", b, 5)))
		}
	}
}

// TestChanged checks the subscription: Changed is closed by the next Add
// and not before, and a subscriber reading Since(last) sees every event.
func TestChanged(t *testing.T) {
	l := New(Capacity, nil)
	ch := l.Changed()
	select {
	case <-ch:
		t.Fatal("Changed closed before any Add")
	default:
	}
	l.Add(KindUp, "p", "b", "x")
	select {
	case <-ch:
	default:
		t.Fatal("Changed not closed by Add")
	}
	if next := l.Changed(); next == ch {
		t.Fatal("Changed returned the closed channel again")
	}

	// A subscriber goroutine collects 300 events while a producer adds them.
	const n = 300
	got := make(chan []uint64, 1)
	start := l.LastID()
	go func() {
		var seen []uint64
		last := start
		timeout := time.After(10 * time.Second)
		for len(seen) < n {
			ch := l.Changed()
			for _, e := range l.Since(last, 7) {
				seen = append(seen, e.ID)
				last = e.ID
			}
			if len(seen) >= n {
				break
			}
			if l.LastID() > last {
				continue // more than the limit was waiting
			}
			select {
			case <-ch:
			case <-timeout:
				got <- seen
				return
			}
		}
		got <- seen
	}()
	for i := 0; i < n; i++ {
		l.Add(KindAdmin, "p", "b", "")
	}
	seen := <-got
	if len(seen) != n {
		t.Fatalf("subscriber saw %d events, want %d", len(seen), n)
	}
	for i, id := range seen {
		if id != start+1+uint64(i) {
			t.Fatalf("subscriber ids out of order at %d: %v", i, seen[:i+1])
		}
	}
}

// TestConcurrent adds from several goroutines while others read; under
// -race it checks the locking, and it checks that IDs are unique and that
// every read is in increasing, consecutive order.
func TestConcurrent(t *testing.T) {
	l := New(100, nil)
	const writers, each = 4, 500
	var wg sync.WaitGroup
	stop := make(chan struct{})
	errs := make(chan error, 8)
	for r := 0; r < 3; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100000; i++ {
				select {
				case <-stop:
					return
				default:
				}
				evs := l.Since(uint64(i%50), 30)
				for j := 1; j < len(evs); j++ {
					if evs[j].ID != evs[j-1].ID+1 {
						errs <- fmt.Errorf("non-consecutive read %v", ids(evs))
						return
					}
				}
				l.ForBackend("p", "b1", 5)
			}
		}()
	}
	var wwg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wwg.Add(1)
		go func() {
			defer wwg.Done()
			for i := 0; i < each; i++ {
				l.Add(KindDown, "p", fmt.Sprint("b", w), "")
			}
		}()
	}
	wwg.Wait()
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if l.LastID() != writers*each {
		t.Fatalf("LastID %d, want %d", l.LastID(), writers*each)
	}
	wantIDs(t, "after concurrent adds", l.Since(0, 0), writers*each-99, writers*each)
}

func BenchmarkAdd(b *testing.B) {
	l := New(Capacity, nil)
	b.ReportAllocs()
	for b.Loop() {
		l.Add(KindEjected, "pool", "127.0.0.1:8081", "ejected after 5 failures")
	}
}
