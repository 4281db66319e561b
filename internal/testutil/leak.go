// Package testutil holds helpers shared by the packages' tests. Production
// code never imports it.
package testutil

import (
	"fmt"
	"os"
	"runtime"
	"testing"
	"time"
)

// VerifyNoLeaks runs a package's tests and fails the package when goroutines
// started by the tests outlive them (STYLE.md P14). It counts goroutines
// before and after, waiting up to 5 s for stragglers to exit, and prints
// every stack on a leak. cleanup, if non-nil, runs after the tests and before
// the count (e.g. to close idle client connections). It never returns.
func VerifyNoLeaks(m *testing.M, cleanup func()) {
	base := runtime.NumGoroutine()
	code := m.Run()
	if code == 0 {
		if cleanup != nil {
			cleanup()
		}
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > base && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		if n := runtime.NumGoroutine(); n > base {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			fmt.Fprintf(os.Stderr, "goroutine leak: %d running, %d before the tests\n%s", n, base, buf)
			code = 1
		}
	}
	os.Exit(code)
}
