//go:build !linux

package rawio

import (
	"net"
	"net/netip"
)

// Sock exists only on Linux; elsewhere connections are Go's own.
type Sock struct{ net.Conn }

// Acceptor exists only on Linux.
type Acceptor struct{}

// NewAcceptor returns nil: accept through the listener instead.
func NewAcceptor(net.Listener) *Acceptor { return nil }

// Accept is never called (NewAcceptor returns nil).
func (a *Acceptor) Accept() (*Sock, error) { return nil, net.ErrClosed }

// Close does nothing.
func (a *Acceptor) Close() error { return nil }

// Peer is never called (no Sock is ever made here).
func (s *Sock) Peer() netip.AddrPort { return netip.AddrPort{} }
