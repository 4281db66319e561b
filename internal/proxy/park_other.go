//go:build !linux

package proxy

// lot is the idle-connection parking lot; it exists only on Linux (epoll).
// Elsewhere idle connections wait in a goroutine each.
type lot struct{}

func newLot(*Server) *lot                     { return nil }
func (l *lot) park(*clientConn) bool          { return false }
func (l *lot) unpark(*clientConn, int32) bool { return false }
func (l *lot) closeAll()                      {}
func (l *lot) close()                         {}
func (c *clientConn) arm(uintptr)             {}
