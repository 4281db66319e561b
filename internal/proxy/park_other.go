//go:build !linux

package proxy

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
