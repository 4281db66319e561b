package upstream

import (
	"context"
	"io"
	"runtime"
	"testing"
	"time"
)

// TryFill never waits: nothing yet is (0, nil); bytes the backend sent are
// appended to R; the backend's close is io.EOF.
func TestTryFill(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("TryFill is an optimisation only on unix")
	}
	srv := startServer(t)
	p := newPool(t, srv.Addr(), time.Minute)
	c, err := p.Get(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	if n, err := c.TryFill(); n != 0 || err != nil {
		t.Fatalf("before any bytes: %d %v", n, err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("TryFill waited %v", d)
	}
	if _, err := c.T.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for c.R.W < 4 && time.Now().Before(deadline) {
		if _, err := c.TryFill(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}
	if got := string(c.R.Buffered()); got != "ping" {
		t.Fatalf("buffered %q, want the echo", got)
	}
	srv.next(t).Close()
	for time.Now().Before(deadline) {
		_, err = c.TryFill()
		if err != nil {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if err != io.EOF {
		t.Fatalf("after the backend closed: %v, want EOF", err)
	}
}
