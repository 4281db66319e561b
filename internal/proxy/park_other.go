//go:build !linux

package proxy

import (
	"time"

	"fulcrum/internal/upstream"
)

// lot is the idle-connection parking lot; it exists only on Linux (epoll).
// Elsewhere idle connections wait in a goroutine each.
type lot struct{}

func newLot(*Server) *lot                  { return nil }
func (l *lot) beginPark(*clientConn) bool  { return false }
func (l *lot) cancelPark(*clientConn)      {}
func (l *lot) finishPark(*clientConn) bool { return false }
func (l *lot) closeAll()                   {}
func (l *lot) close()                      {}
func (c *clientConn) arm(uintptr)          {}
func (l *lot) poll()                       {}

type upWaiter struct{}

func (l *lot) awaitUpstream(*upWaiter, *upstream.Conn, time.Duration) (int, error, bool) {
	return 0, nil, false
}
