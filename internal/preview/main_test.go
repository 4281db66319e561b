package preview

import (
	"flag"
	"os"
	"testing"

	"fulcrum/internal/testutil"
)

// TestMain fails the package if a goroutine a test started (a pool's)
// outlives the tests. Not while fuzzing: the fuzzing engine's own signal
// goroutine outlives m.Run.
func TestMain(m *testing.M) {
	flag.Parse()
	if f := flag.Lookup("test.fuzz"); f != nil && f.Value.String() != "" {
		os.Exit(m.Run())
	}
	testutil.VerifyNoLeaks(m, nil)
}
