package health

import (
	"testing"
	"time"
)

func TestRiseFall(t *testing.T) {
	const T, F = true, false
	tests := []struct {
		name       string
		start      bool
		rise, fall int
		in         []bool
		want       []bool // verdict after each outcome
		changes    int
	}{
		{"up stays up on success", T, 2, 3, []bool{T, T, T}, []bool{T, T, T}, 0},
		{"first failures still need fall", T, 2, 3, []bool{F, F, F}, []bool{T, T, F}, 1},
		{"success resets the failure run", T, 2, 3, []bool{F, F, T, F, F, F}, []bool{T, T, T, T, T, F}, 1},
		{"down needs rise successes", F, 2, 3, []bool{T, T}, []bool{F, T}, 1},
		{"failure resets the success run", F, 2, 3, []bool{T, F, T, T}, []bool{F, F, F, T}, 1},
		{"thresholds of one flip at once", T, 1, 1, []bool{F, T, F, T}, []bool{F, T, F, T}, 4},
		{"zero thresholds count as one", T, 0, 0, []bool{F, T}, []bool{F, T}, 2},
		{"full cycle", T, 2, 2, []bool{F, F, T, T, F, T, F, F}, []bool{T, F, F, T, T, T, T, F}, 3},
		{"runs restart after a flip", T, 3, 2, []bool{F, F, T, T, F, T, T, T}, []bool{T, F, F, F, F, F, F, T}, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rf := newRiseFall(tc.start)
			changes := 0
			for i, ok := range tc.in {
				before := rf.up
				ch := rf.observe(ok, tc.rise, tc.fall)
				if ch != (before != rf.up) {
					t.Fatalf("step %d: changed=%v but verdict %v -> %v", i, ch, before, rf.up)
				}
				if ch {
					changes++
				}
				if rf.up != tc.want[i] {
					t.Fatalf("step %d (ok=%v): up=%v, want %v", i, ok, rf.up, tc.want[i])
				}
			}
			if changes != tc.changes {
				t.Fatalf("changes=%d, want %d", changes, tc.changes)
			}
		})
	}
}

func TestRiseFallThresholdChangeKeepsRun(t *testing.T) {
	rf := newRiseFall(true)
	rf.observe(false, 2, 5)
	rf.observe(false, 2, 5)
	// Reload lowers fall to 3: the two failures so far still count.
	if !rf.observe(false, 2, 3) || rf.up {
		t.Fatal("third failure under fall=3 should mark down")
	}
}

func TestJittered(t *testing.T) {
	d := 10 * time.Second
	for _, tc := range []struct {
		u    float64
		want time.Duration
	}{{0, 9 * time.Second}, {0.5, 10 * time.Second}, {0.999999, 10999998 * time.Microsecond}} {
		got := jittered(d, tc.u)
		if got < tc.want-time.Microsecond || got > tc.want+time.Microsecond {
			t.Errorf("jittered(%v, %v) = %v, want ~%v", d, tc.u, got, tc.want)
		}
	}
}
