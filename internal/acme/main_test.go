package acme_test

import (
	"testing"

	"fulcrum/internal/testutil"
)

// TestMain fails the package if a goroutine running fulcrum code outlives
// the tests. (certmagic keeps one rate limiter goroutine per CA account for
// the life of the process, by design; a stack check ignores it.)
func TestMain(m *testing.M) { testutil.VerifyNoFulcrumLeaks(m) }
