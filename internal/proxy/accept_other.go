//go:build !linux

package proxy

import "net"

// deferAccept is a no-op where TCP_DEFER_ACCEPT does not exist.
func deferAccept(net.Listener, int) {}
