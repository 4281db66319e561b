package route

import (
	"strings"
	"sync"
	"testing"
)

func splitRoute(t *testing.T, ts ...SplitTarget) *Route {
	t.Helper()
	return mustCompile(t, []Spec{{Split: ts}}).Routes()[0]
}

func TestSplitExact(t *testing.T) {
	r := splitRoute(t, SplitTarget{"api", 95}, SplitTarget{"canary", 5})
	for round := range 3 {
		n := map[string]int{}
		for range 100 {
			n[r.PickPool()]++
		}
		if n["api"] != 95 || n["canary"] != 5 {
			t.Fatalf("round %d: %v, want api 95, canary 5", round, n)
		}
	}
}

func TestSplitIsNginxSmooth(t *testing.T) {
	// The sequence nginx's smooth weighted round robin gives for 5:1:1.
	r := splitRoute(t, SplitTarget{"a", 5}, SplitTarget{"b", 1}, SplitTarget{"c", 1})
	var got []string
	for range 14 {
		got = append(got, r.PickPool())
	}
	if s := strings.Join(got, ""); s != "aabacaaaabacaa" {
		t.Fatalf("sequence %s", s)
	}
	// Weights with a common divisor have the reduced period.
	r = splitRoute(t, SplitTarget{"a", 200}, SplitTarget{"b", 100})
	if len(r.split.cycle) != 3 {
		t.Fatalf("period %d, want 3", len(r.split.cycle))
	}
}

func TestSplitConcurrent(t *testing.T) {
	tab := mustCompile(t, []Spec{
		{Match: Match{Host: []string{"a.com"}}, Split: []SplitTarget{{"api", 95}, {"canary", 5}}},
		{Pool: "web"},
	})
	const workers, per = 8, 1000 // 8000 picks: 80 whole periods
	var mu sync.Mutex
	total := map[string]int{}
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			n := map[string]int{}
			ra, rb := req("GET", "a.com", "/x"), req("GET", "b.com", "/x")
			for range per {
				r := tab.Lookup(ra)
				if r == nil || r.Index() != 0 {
					t.Error("a.com: wrong route")
					return
				}
				n[r.PickPool()]++
				if r := tab.Lookup(rb); r == nil || r.PickPool() != "web" {
					t.Error("b.com: wrong route")
					return
				}
			}
			mu.Lock()
			defer mu.Unlock()
			for k, v := range n {
				total[k] += v
			}
		})
	}
	wg.Wait()
	if total["api"] != 7600 || total["canary"] != 400 {
		t.Fatalf("%v, want api 7600, canary 400", total)
	}
}

func TestPickPoolDoesNotAllocate(t *testing.T) {
	r := splitRoute(t, SplitTarget{"a", 3}, SplitTarget{"b", 2})
	if n := testing.AllocsPerRun(1000, func() { r.PickPool() }); n != 0 {
		t.Fatalf("%v allocs per pick", n)
	}
}
