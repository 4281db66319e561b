package upstream

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"fulcrum/internal/h1"
	"fulcrum/internal/testutil"
)

// TestMain fails the package if a goroutine started by the tests (the
// loopback servers and their connection handlers) outlives them (STYLE.md P14).
func TestMain(m *testing.M) { testutil.VerifyNoLeaks(m, nil) }

// server is a loopback TCP echo server that counts the connections it
// accepts and the ones still open, and hands each accepted connection to the
// test through Accepted (when there is room) so the test can act as the
// backend on it (close it, write unsolicited bytes).
type server struct {
	ln       net.Listener
	accepted atomic.Int64
	open     atomic.Int64
	Accepted chan net.Conn

	wg    sync.WaitGroup
	mu    sync.Mutex
	conns []net.Conn
}

func startServer(t testing.TB) *server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &server{ln: ln, Accepted: make(chan net.Conn, 1024)}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.accepted.Add(1)
			s.open.Add(1)
			s.mu.Lock()
			s.conns = append(s.conns, c)
			s.mu.Unlock()
			select {
			case s.Accepted <- c:
			default:
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer s.open.Add(-1)
				defer c.Close()
				io.Copy(c, c) // echo until the client (or the test) closes
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		s.mu.Lock()
		for _, c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return s
}

func (s *server) Addr() string { return s.ln.Addr().String() }

// next returns the next connection the server accepted.
func (s *server) next(t testing.TB) net.Conn {
	t.Helper()
	select {
	case c := <-s.Accepted:
		return c
	case <-time.After(10 * time.Second):
		t.Fatal("server accepted no connection within 10s")
		return nil
	}
}

// newPool returns a pool for addr, closed at cleanup.
func newPool(t testing.TB, addr string, idle time.Duration) *Pool {
	t.Helper()
	p := New(Options{Addr: addr, ConnectTimeout: 5 * time.Second, IdleTimeout: idle})
	t.Cleanup(p.Close)
	return p
}

// echo sends msg over c and reads the echo back through c.R, consuming it
// so that the connection can be returned to the pool.
func echo(t testing.TB, c *Conn, msg string) {
	t.Helper()
	c.T.Conn.SetDeadline(time.Now().Add(10 * time.Second))
	defer c.T.Conn.SetDeadline(time.Time{})
	if _, err := c.T.Write([]byte(msg)); err != nil {
		t.Fatalf("write: %v", err)
	}
	for c.R.W-c.R.R < len(msg) {
		if _, err := c.R.Fill(BufSize); err != nil {
			t.Fatalf("read echo: %v", err)
		}
	}
	if got := string(c.R.Buffered()[:len(msg)]); got != msg {
		t.Fatalf("echo = %q, want %q", got, msg)
	}
	c.R.Discard(len(msg))
}

// backdate makes an idle connection look idle for d already.
func backdate(c *Conn, d time.Duration) { c.idleAt.Store(time.Now().Add(-d).UnixNano()) }

// closedByPool reports whether our side of c has been closed (as opposed to
// the peer having closed its side).
func closedByPool(c *Conn) bool {
	err := c.T.Conn.SetReadDeadline(time.Time{})
	return err != nil
}

// waitDead waits until the liveness peek sees what the backend did to c
// (EOF or unsolicited bytes): loopback delivery is fast but not synchronous.
func waitDead(t testing.TB, c *Conn) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for c.alive() {
		if time.Now().After(deadline) {
			t.Fatal("the client never saw the backend's close or bytes")
		}
		time.Sleep(time.Millisecond)
	}
}

// fakeConn is a net.Conn that only records Close; any other use panics (the
// embedded interface is nil), which is what the tests using it want.
type fakeConn struct {
	net.Conn
	closed atomic.Bool
}

func (f *fakeConn) Close() error { f.closed.Store(true); return nil }

// fake returns a pool connection over a fakeConn, as dial would build it.
func fake() (*Conn, *fakeConn) {
	fc := &fakeConn{}
	c := &Conn{}
	c.T.Conn = fc
	c.R = h1.Reader{Conn: &c.T, Buf: make([]byte, 64)}
	return c, fc
}
