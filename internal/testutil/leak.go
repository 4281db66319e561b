// Package testutil holds helpers shared by the packages' tests. Production
// code never imports it.
package testutil

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"strings"
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
	// A fuzzing run (-fuzz) leaves goroutines of the fuzzing engine's own
	// (its signal handling): count only in ordinary runs, which also run
	// every fuzz target's seed corpus.
	if f := flag.Lookup("test.fuzz"); code == 0 && (f == nil || f.Value.String() == "") {
		if cleanup != nil {
			cleanup()
		}
		if n, ok := WaitGoroutines(base, 5*time.Second); !ok {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			fmt.Fprintf(os.Stderr, "goroutine leak: %d running, %d before the tests\n%s", n, base, buf)
			code = 1
		}
	}
	os.Exit(code)
}

// WaitGoroutines polls until at most n goroutines run or the timeout passes;
// it returns the last count and whether it got down to n.
func WaitGoroutines(n int, timeout time.Duration) (int, bool) {
	deadline := time.Now().Add(timeout)
	for {
		got := runtime.NumGoroutine()
		if got <= n {
			return got, true
		}
		if time.Now().After(deadline) {
			return got, false
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// VerifyNoFulcrumLeaks runs a package's tests and fails the package when a
// goroutine running fulcrum code (servers, connections, pools, checkers)
// outlives them. It looks at stacks rather than counts, so goroutines of the
// standard library's own pools do not disturb it. It never returns.
func VerifyNoFulcrumLeaks(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if leaked := fulcrumGoroutines(5 * time.Second); leaked != "" {
			fmt.Fprintf(os.Stderr, "leaked goroutines:\n%s\n", leaked)
			code = 1
		}
	}
	os.Exit(code)
}

// fulcrumGoroutines waits up to wait for every goroutine running fulcrum code
// (other than this check's own) to exit, and returns the stacks left.
func fulcrumGoroutines(wait time.Duration) string {
	deadline := time.Now().Add(wait)
	for {
		buf := make([]byte, 8<<20)
		buf = buf[:runtime.Stack(buf, true)]
		var leaked []string
		for _, g := range strings.Split(string(buf), "\n\n") {
			if strings.Contains(g, "fulcrum/internal/") && !strings.Contains(g, "testutil.") &&
				!strings.Contains(g, ".TestMain") {
				leaked = append(leaked, g)
			}
		}
		if len(leaked) == 0 || time.Now().After(deadline) {
			return strings.Join(leaked, "\n\n")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
