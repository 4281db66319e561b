package pool

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// drain takes retries until the budget refuses one (bounded) and returns how
// many it granted.
func drain(b *RetryBudget, now time.Time) int {
	n := 0
	for n < 10000 && b.TryRetry(now) {
		n++
	}
	return n
}

func TestRetryBudgetMinimum(t *testing.T) {
	var b RetryBudget
	if got := drain(&b, epoch); got != budgetMin {
		t.Fatalf("a quiet pool got %d retries, want the minimum %d", got, budgetMin)
	}
	// A few requests do not raise it above the minimum (20% of 10 is 2).
	var b2 RetryBudget
	for i := 0; i < 10; i++ {
		b2.Request(epoch)
	}
	if got := drain(&b2, epoch); got != budgetMin {
		t.Fatalf("10 requests: %d retries, want %d", got, budgetMin)
	}
}

func TestRetryBudgetPercent(t *testing.T) {
	for _, reqs := range []int{100, 250, 1000} {
		var b RetryBudget
		// Spread the requests over the window, as live traffic would be.
		for i := 0; i < reqs; i++ {
			b.Request(epoch.Add(time.Duration(i%budgetWindow) * time.Second))
		}
		now := epoch.Add((budgetWindow - 1) * time.Second)
		want := reqs * budgetPercent / 100
		if got := drain(&b, now); got != want {
			t.Errorf("%d requests in the window: %d retries, want %d (%d%%)", reqs, got, want, budgetPercent)
		}
	}
}

// TestRetryBudgetSlides checks that requests and retries older than the
// window stop counting, one second at a time.
func TestRetryBudgetSlides(t *testing.T) {
	var b RetryBudget
	t0 := epoch.Truncate(time.Second)
	for i := 0; i < 100; i++ {
		b.Request(t0)
	}
	if got := drain(&b, t0); got != 20 {
		t.Fatalf("t0: %d retries, want 20", got)
	}
	// Half-way through the window: the spent budget still counts.
	t5 := t0.Add(5 * time.Second)
	if b.TryRetry(t5) {
		t.Fatal("t0+5s: retry granted with the budget spent")
	}
	for i := 0; i < 100; i++ {
		b.Request(t5)
	}
	// 200 requests, 20 retries in the window: 20 more fit.
	if got := drain(&b, t5); got != 20 {
		t.Fatalf("t0+5s: %d retries, want 20", got)
	}
	// Last second of t0's bucket in the window.
	if b.TryRetry(t0.Add(9*time.Second + 999*time.Millisecond)) {
		t.Fatal("t0+9.999s: retry granted with the budget spent")
	}
	// t0 leaves the window: its 100 requests and 20 retries no longer count,
	// leaving 100 requests and 20 retries (from t5): still spent.
	t10 := t0.Add(10 * time.Second)
	if b.TryRetry(t10) {
		t.Fatal("t0+10s: retry granted, but t0+5s's retries use up t0+5s's budget")
	}
	// t5 leaves too: an empty window gives the minimum again.
	t15 := t0.Add(15 * time.Second)
	if got := drain(&b, t15); got != budgetMin {
		t.Fatalf("t0+15s: %d retries, want %d", got, budgetMin)
	}
	// A bucket reused after a whole window (same index) starts from zero.
	t25 := t0.Add(25 * time.Second)
	for i := 0; i < 50; i++ {
		b.Request(t25)
	}
	if got := drain(&b, t25); got != 10 {
		t.Fatalf("t0+25s (bucket reused): %d retries, want 10", got)
	}
}

// TestRetryBudgetConcurrent hammers the budget from several goroutines (for
// the race detector) and checks the bound holds up to the overshoot that
// concurrent check-then-add allows: at most one extra retry per goroutine.
func TestRetryBudgetConcurrent(t *testing.T) {
	var b RetryBudget
	now := epoch.Truncate(time.Second)
	const workers, perWorker = 8, 500
	var granted atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perWorker; i++ {
				b.Request(now)
				if b.TryRetry(now) {
					granted.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	limit := int64(max(workers*perWorker*budgetPercent/100, budgetMin))
	if g := granted.Load(); g > limit+workers || g < limit/2 {
		t.Fatalf("granted %d retries for %d requests, want about %d (at most %d)", g, workers*perWorker, limit, limit+workers)
	}
}
