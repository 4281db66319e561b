package balance

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// benchWeights are mixed weights, so weighted strategies do real work.
func benchWeights(n int) []int {
	w := make([]int, n)
	for i := range w {
		w[i] = 1 + i%5
	}
	return w
}

// pickOnce is one request as the proxy does it: pick, then (for the
// strategies that depend on them) Acquire, latency and Release.
func pickOnce(b *testing.B, p Picker, r *Request, name string, now time.Time) {
	be, err := p.Pick(r)
	if err != nil {
		b.Fatal(err)
	}
	switch name {
	case "least_connections", "power_of_two":
		be.State.Acquire()
		be.State.Release(false)
	case "least_response_time":
		be.State.Acquire()
		be.State.ObserveLatency(time.Millisecond, now)
		be.State.Release(false)
	}
}

func BenchmarkPick(b *testing.B) {
	for _, name := range strategies {
		for _, n := range []int{3, 1000} {
			b.Run(fmt.Sprintf("%s/%d", name, n), func(b *testing.B) {
				p := build(b, name, mkBackends(benchWeights(n)...), NewRand())
				r := &Request{HasHash: true}
				now := epoch
				b.ReportAllocs()
				for i := 0; b.Loop(); i++ {
					r.Hash = uint64(i) * 0x9e3779b97f4a7c15
					pickOnce(b, p, r, name, now)
				}
			})
		}
	}
}

// BenchmarkPickParallel shows contention on the shared counters and trees.
func BenchmarkPickParallel(b *testing.B) {
	for _, name := range strategies {
		for _, n := range []int{3, 1000} {
			b.Run(fmt.Sprintf("%s/%d", name, n), func(b *testing.B) {
				p := build(b, name, mkBackends(benchWeights(n)...), NewRand())
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					r := &Request{HasHash: true, Hash: rand.Uint64()}
					for pb.Next() {
						r.Hash += 0x9e3779b97f4a7c15
						pickOnce(b, p, r, name, epoch)
					}
				})
			})
		}
	}
}

// BenchmarkBuild measures snapshot builds for 1000 backends: what a health
// transition or slow-start step costs.
func BenchmarkBuild(b *testing.B) {
	skewed := make([]int, 1000)
	for i := range skewed {
		skewed[i] = 1 + (i*7919)%1000 // many distinct weights: the WRR worst case
	}
	for _, tc := range []struct {
		name    string
		weights []int
	}{
		{"equal", equalWeights(1000)},
		{"mixed", benchWeights(1000)},
		{"skewed", skewed},
	} {
		for _, name := range []string{"weighted_round_robin", "least_connections", "random", "consistent_hash"} {
			b.Run(fmt.Sprintf("%s/%s/1000", name, tc.name), func(b *testing.B) {
				bs := mkBackends(tc.weights...)
				bld, _ := Lookup(name)
				b.ReportAllocs()
				for b.Loop() {
					bld(bs, nil)
				}
			})
		}
	}
}
