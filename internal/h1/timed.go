package h1

import (
	"net"
	"time"
)

// TimedConn wraps a connection with inactivity timeouts: while ReadTimeout
// (WriteTimeout) is non-zero, each Read (Write) pushes the deadline forward,
// so a long transfer that keeps moving never times out but a stalled one
// does. Deadlines are only re-armed when a quarter of the timeout has passed,
// which keeps the per-call cost to one clock read.
type TimedConn struct {
	net.Conn
	ReadTimeout  time.Duration
	WriteTimeout time.Duration
	rdl, wdl     int64
}

func (t *TimedConn) Read(b []byte) (int, error) {
	if t.ReadTimeout > 0 {
		now := time.Now().UnixNano()
		if want := now + int64(t.ReadTimeout); want-t.rdl > int64(t.ReadTimeout)/4 {
			t.Conn.SetReadDeadline(time.Unix(0, want))
			t.rdl = want
		}
	}
	return t.Conn.Read(b)
}

func (t *TimedConn) Write(b []byte) (int, error) {
	if t.WriteTimeout > 0 {
		now := time.Now().UnixNano()
		if want := now + int64(t.WriteTimeout); want-t.wdl > int64(t.WriteTimeout)/4 {
			t.Conn.SetWriteDeadline(time.Unix(0, want))
			t.wdl = want
		}
	}
	return t.Conn.Write(b)
}

// SetReadDeadline sets an absolute read deadline (for phases such as reading
// a head) and disables the inactivity timeout until ReadTimeout is set again.
func (t *TimedConn) SetReadDeadline(d time.Time) error {
	t.ReadTimeout = 0
	if d.IsZero() {
		t.rdl = 0
	} else {
		t.rdl = d.UnixNano()
	}
	return t.Conn.SetReadDeadline(d)
}

// SetWriteDeadline sets an absolute write deadline.
func (t *TimedConn) SetWriteDeadline(d time.Time) error {
	t.WriteTimeout = 0
	if d.IsZero() {
		t.wdl = 0
	} else {
		t.wdl = d.UnixNano()
	}
	return t.Conn.SetWriteDeadline(d)
}
