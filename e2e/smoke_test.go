package e2e

import (
	"fmt"
	"net/http"
	"testing"
)

func TestSmokeRoundRobin(t *testing.T) {
	b1 := StartBackend(t, "b1", 0, nil)
	b2 := StartBackend(t, "b2", 0, nil)
	f := StartFulcrum(t, fmt.Sprintf(`{"strategy": "round_robin", "backends": [{"url": %q}, {"url": %q}]}`, b1.URL, b2.URL))
	c := &http.Client{}
	got := map[string]int{}
	for i := 0; i < 10; i++ {
		code, body := Get(t, c, f.URL("/"))
		if code != 200 {
			t.Fatalf("status %d", code)
		}
		got[body]++
	}
	if got["b1"] != 5 || got["b2"] != 5 {
		t.Fatalf("distribution %v, want 5/5", got)
	}
}
