package h1

import (
	"net"
	"time"
)

// TimedConn wraps a connection with inactivity timeouts: while ReadTimeout
// (WriteTimeout) is non-zero, each Read (Write) keeps the deadline at least
// 15/16 of the timeout ahead, so a transfer that keeps moving never times out
// but a stalled one does. The deadline is re-armed only when it has fallen
// below that mark, so on a busy connection most calls cost one clock read and
// no timer update.
type TimedConn struct {
	net.Conn
	ReadTimeout  time.Duration
	WriteTimeout time.Duration
	// Written counts the bytes written through Write (the access log's
	// bytes out); the owner may reset or add to it.
	Written  int64
	rdl, wdl int64
}

// stale reports whether a deadline dl (unix nanos, 0 = none) is less than
// 15/16 of timeout d ahead of now, or more than d ahead (left by an earlier,
// longer timeout or absolute deadline).
func stale(dl, now int64, d time.Duration) bool {
	ahead := dl - now
	return dl == 0 || ahead < int64(d)-int64(d)/16 || ahead > int64(d)
}

func (t *TimedConn) Read(b []byte) (int, error) {
	if t.ReadTimeout > 0 {
		t.armRead()
	}
	return t.Conn.Read(b)
}

func (t *TimedConn) Write(b []byte) (int, error) {
	if t.WriteTimeout > 0 {
		t.armWrite()
	}
	n, err := t.Conn.Write(b)
	t.Written += int64(n)
	return n, err
}

func (t *TimedConn) armRead() {
	now := time.Now().UnixNano()
	if stale(t.rdl, now, t.ReadTimeout) {
		want := now + int64(t.ReadTimeout)
		t.Conn.SetReadDeadline(time.Unix(0, want))
		t.rdl = want
	}
}

func (t *TimedConn) armWrite() {
	now := time.Now().UnixNano()
	if stale(t.wdl, now, t.WriteTimeout) {
		want := now + int64(t.WriteTimeout)
		t.Conn.SetWriteDeadline(time.Unix(0, want))
		t.wdl = want
	}
}

// ArmRead switches reads to an inactivity timeout of d (0 = none) and makes
// sure the deadline is armed now, for waits that bypass Read (RawConn).
func (t *TimedConn) ArmRead(d time.Duration) {
	t.ReadTimeout = d
	if d > 0 {
		t.armRead()
	} else if t.rdl != 0 {
		t.rdl = 0
		t.Conn.SetReadDeadline(time.Time{})
	}
}

// ArmWrite switches writes to an inactivity timeout of d (0 = none).
func (t *TimedConn) ArmWrite(d time.Duration) {
	t.WriteTimeout = d
	if d > 0 {
		t.armWrite()
	} else if t.wdl != 0 {
		t.wdl = 0
		t.Conn.SetWriteDeadline(time.Time{})
	}
}

// SetReadDeadline sets an absolute read deadline (for phases such as reading
// a head) and disables the inactivity timeout until it is armed again.
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
