package proxy

import (
	"testing"
	"time"
)

// The error-log limiter lets 20 lines a second through and reports how many
// it held back with the first line of the next second.
func TestLogLimiter(t *testing.T) {
	var l logLimiter
	t0 := time.Unix(1000, 0)
	passed := 0
	for i := 0; i < 50; i++ {
		if ok, _ := l.allow(t0); ok {
			passed++
		}
	}
	if passed != 20 {
		t.Fatalf("%d lines passed in one second, want 20", passed)
	}
	ok, sup := l.allow(t0.Add(time.Second))
	if !ok || sup != 30 {
		t.Fatalf("next second: ok=%v suppressed=%d, want true 30", ok, sup)
	}
}
