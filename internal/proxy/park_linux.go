//go:build linux

package proxy

import (
	"errors"
	"os"
	"runtime"
	"sync/atomic"
	"syscall"
	"time"

	"fulcrum/internal/upstream"
)

// lot parks idle keep-alive client connections in an epoll set of fulcrum's
// own, so that an idle connection holds no goroutine (and no goroutine stack):
// only its socket and its clientConn. The lot's epoll descriptor is itself
// registered in Go's network poller, so one goroutine waits for all parked
// connections without blocking a thread. When a parked connection becomes
// readable (a request, or the client's close), a fresh goroutine serves it.
//
// A connection's descriptor is registered once, edge-triggered, the first
// time it parks; parking and waking then cost no system call of their own.
//
// The same goroutine enforces idle_timeout for parked connections with a
// sweep every idle_timeout/16 (but at least once a second), since their Go read
// deadline no longer has a goroutine to wake.
//
// Requests waiting for a backend's answer wait in the lot too (awaitUpstream),
// and serving goroutines take ready events off the set themselves (poll), so
// that under load no wait depends on Go polling the network, which it does
// only when it runs out of runnable goroutines.
type lot struct {
	srv *Server
	f   *os.File
	rc  syscall.RawConn

	// conns maps a parked connection's descriptor number to it; ups maps a
	// backend connection's descriptor to the request waiting for its answer.
	conns   fdTable[clientConn]
	ups     fdTable[upWaiter]
	parked  atomic.Int64
	waiting atomic.Int64

	events [128]syscall.EpollEvent
	drainF func(uintptr) bool
	pollF  func(uintptr)
	// draining guards events: the lot's goroutine and serving goroutines
	// (poll) take ready events off the set, one at a time.
	draining atomic.Bool
	lastPoll atomic.Int64
	done     chan struct{}
}

const (
	lotChunkSize = 1024
	lotChunks    = 1024 // descriptors up to 1<<20 can park; higher ones wait in a goroutine
)

// fdTable maps descriptor numbers to T, in chunks allocated on first use so
// that storing and loading take no lock.
type fdTable[T any] struct {
	chunks [lotChunks]atomic.Pointer[[lotChunkSize]atomic.Pointer[T]]
}

// slot returns fd's entry, allocating its chunk if alloc is set (nil if fd is
// out of range, or its chunk does not exist and alloc is not set).
func (t *fdTable[T]) slot(fd int, alloc bool) *atomic.Pointer[T] {
	if fd < 0 || fd >= lotChunkSize*lotChunks {
		return nil
	}
	ch := t.chunks[fd/lotChunkSize].Load()
	if ch == nil {
		if !alloc {
			return nil
		}
		nc := new([lotChunkSize]atomic.Pointer[T])
		if t.chunks[fd/lotChunkSize].CompareAndSwap(nil, nc) {
			ch = nc
		} else {
			ch = t.chunks[fd/lotChunkSize].Load()
		}
	}
	return &ch[fd%lotChunkSize]
}

// each calls f for every non-nil entry.
func (t *fdTable[T]) each(f func(*T)) {
	for i := range t.chunks {
		ch := t.chunks[i].Load()
		if ch == nil {
			continue
		}
		for j := range ch {
			if v := ch[j].Load(); v != nil {
				f(v)
			}
		}
	}
}

func newLot(srv *Server) *lot {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil
	}
	if err := syscall.SetNonblock(epfd, true); err != nil {
		syscall.Close(epfd)
		return nil
	}
	f := os.NewFile(uintptr(epfd), "fulcrum-idle-epoll")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil
	}
	l := &lot{srv: srv, f: f, rc: rc, done: make(chan struct{})}
	l.drainF = l.drain
	l.pollF = l.pollFD
	// A deadline on the epoll file proves it is in Go's poller (a blocking
	// file would make the wait below hold a thread); it also times the sweeps.
	if err := f.SetReadDeadline(time.Now().Add(sweepEvery(srv.settings.Load().Limits.IdleTimeout))); err != nil {
		f.Close()
		return nil
	}
	go l.run()
	return l
}

func (l *lot) slot(fd int) *atomic.Pointer[clientConn] { return l.conns.slot(fd, true) }

// beginPark starts parking c (idle, between requests, owned by the calling
// goroutine): it registers c's descriptor in the lot on first use and moves c
// to stateParking. The caller then reads once without blocking, and either
// finds bytes (cancelPark) or calls finishPark. It reports false if c cannot
// park.
//
// The registration is edge-triggered: an event comes for bytes that arrive
// after they were registered, never for bytes already there. That is why
// the state changes before the caller's read: bytes that came before it are
// found by the read, bytes that come after it raise an event, which finds c
// parking or parked. While c is parking, a wake-up only marks it
// (stateWoken) and sweeps and shutdown leave it alone, so the calling
// goroutine still owns c until finishPark succeeds.
func (l *lot) beginPark(c *clientConn) bool {
	s := l.slot(c.fd)
	if s == nil || l.srv.shutting.Load() {
		return false
	}
	c.parkedAt.Store(nanotime())
	s.Store(c)
	if !c.state.CompareAndSwap(stateIdle, stateParking) {
		s.CompareAndSwap(c, nil)
		return false // Shutdown closed it; the caller's read will notice
	}
	if !c.inLot {
		// Register under the descriptor's reference count, so that a
		// forced close by Shutdown cannot free the number meanwhile.
		c.parkErr = nil
		if err := c.raw.Control(c.armFn); err != nil && c.parkErr == nil {
			c.parkErr = err
		}
		if c.parkErr != nil {
			l.cancelPark(c)
			return false
		}
	}
	return true
}

// cancelPark takes back a connection that beginPark started to park.
func (l *lot) cancelPark(c *clientConn) {
	if s := l.slot(c.fd); s != nil {
		s.CompareAndSwap(c, nil)
	}
	c.state.Store(stateIdle)
}

// finishPark parks c, which the caller must then not touch: it may already be
// served again. It reports false if c was woken while parking; it is then
// idle and the caller's to serve.
func (l *lot) finishPark(c *clientConn) bool {
	l.parked.Add(1)
	if c.state.CompareAndSwap(stateParking, stateParked) {
		return true
	}
	l.parked.Add(-1)
	l.cancelPark(c)
	return false
}

// arm is c's RawConn.Control callback: register its descriptor, for good and
// edge-triggered, for readability and the peer's close.
func (c *clientConn) arm(fd uintptr) {
	err := c.srv.lot.register(fd)
	if err == nil {
		c.inLot = true
	}
	c.parkErr = err // read by beginPark, which still owns c (stateParking)
}

// register adds fd to the lot's epoll set, edge-triggered, for readability
// and the peer's close. It holds the lot's own descriptor meanwhile: once the
// lot is closed its number may belong to another epoll set (Go's own), where
// an entry of ours would be read as one of the runtime's.
func (l *lot) register(fd uintptr) error {
	var err error
	if cerr := l.rc.Control(func(epfd uintptr) {
		ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | epollET, Fd: int32(fd)}
		err = syscall.EpollCtl(int(epfd), syscall.EPOLL_CTL_ADD, int(fd), &ev)
	}); cerr != nil {
		return cerr
	}
	return err
}

// epollET is EPOLLET as the uint32 that EpollEvent.Events is.
const epollET = 1 << 31

// unpark takes c out of the lot if it is still parked, for the caller to
// serve (wake) or close (sweep, shutdown).
func (l *lot) unpark(c *clientConn, to int32) bool {
	if !c.state.CompareAndSwap(stateParked, to) {
		return false
	}
	l.parked.Add(-1)
	if s := l.slot(c.fd); s != nil {
		s.CompareAndSwap(c, nil)
	}
	return true
}

func (l *lot) run() {
	defer close(l.done)
	for {
		err := l.rc.Read(l.drainF)
		if err == nil || !errors.Is(err, os.ErrDeadlineExceeded) {
			return // the lot was closed
		}
		l.sweep()
	}
}

// drain is the lot goroutine's RawConn.Read callback: it takes every ready
// event off the lot's epoll set and serves the connections they name; it
// returns false to wait for more.
func (l *lot) drain(fd uintptr) bool {
	// A serving goroutine may be draining (poll): wait for it rather than
	// skip, since the event that woke this goroutine may have come after
	// that drain's last look.
	for !l.draining.CompareAndSwap(false, true) {
		runtime.Gosched()
	}
	l.take(int(fd))
	l.draining.Store(false)
	return false
}

// pollEvery is how often (at most) serving goroutines look for woken
// connections themselves.
const pollEvery = int64(100 * time.Microsecond)

// poll is called by serving goroutines between requests. Under load Go looks
// for network events only when it runs out of runnable goroutines, so a
// parked connection's request could wait for a whole scheduling round (or
// up to 10 ms); looking here, like an event loop does between events, keeps
// that wait short. It costs one epoll_wait per pollEvery at most.
func (l *lot) poll() {
	now := nanotime()
	if now-l.lastPoll.Load() < pollEvery || l.parked.Load()+l.waiting.Load() == 0 {
		return
	}
	if !l.draining.CompareAndSwap(false, true) {
		return
	}
	l.lastPoll.Store(now)
	l.rc.Control(l.pollF) // holds the descriptor against a concurrent close
	l.draining.Store(false)
}

func (l *lot) pollFD(fd uintptr) { l.take(int(fd)) }

// take takes every ready event off the set (draining held) and wakes the
// connections they name.
func (l *lot) take(epfd int) {
	for {
		n, err := syscall.EpollWait(epfd, l.events[:], 0)
		if err == syscall.EINTR {
			continue
		}
		if n <= 0 {
			return
		}
		for i := range n {
			fd := int(l.events[i].Fd)
			// An event may be stale (its connection closed and the number
			// reused since): waking early is harmless, the woken side
			// finds nothing to read and waits again.
			if s := l.conns.slot(fd, false); s != nil {
				if c := s.Load(); c != nil {
					l.wake(c)
					continue
				}
			}
			if s := l.ups.slot(fd, false); s != nil {
				if w := s.Load(); w != nil && s.CompareAndSwap(w, nil) {
					select {
					case w.ch <- struct{}{}:
					default:
					}
				}
			}
		}
		if n < len(l.events) {
			return
		}
	}
}

// wake has c served (by an idle worker) if it is parked, or tells its parking
// goroutine to serve it if it is still being parked.
func (l *lot) wake(c *clientConn) {
	for range 100 {
		switch c.state.Load() {
		case stateParked:
			if l.unpark(c, stateIdle) {
				l.srv.workers.serve(c)
				return
			}
		case stateParking:
			if c.state.CompareAndSwap(stateParking, stateWoken) {
				return
			}
		default:
			return
		}
	}
}

// sweep closes parked connections idle for longer than idle_timeout and sets
// the deadline for the next sweep.
func (l *lot) sweep() {
	idle := l.srv.settings.Load().Limits.IdleTimeout
	now := nanotime()
	if idle > 0 && l.parked.Load() > 0 {
		l.conns.each(func(c *clientConn) {
			if now-c.parkedAt.Load() >= int64(idle) && l.unpark(c, stateClosed) {
				c.close()
			}
		})
	}
	l.f.SetReadDeadline(time.Now().Add(sweepEvery(idle)))
}

func sweepEvery(idle time.Duration) time.Duration {
	d := idle / 16
	switch {
	case idle <= 0 || d > time.Second:
		return time.Second
	case d < 5*time.Millisecond:
		return 5 * time.Millisecond
	}
	return d
}

// closeAll closes every parked connection (shutdown).
func (l *lot) closeAll() {
	l.conns.each(func(c *clientConn) {
		if l.unpark(c, stateClosed) {
			c.close()
		}
	})
}

// close stops the lot's goroutine; call after closeAll, once no connection
// can park any more.
func (l *lot) close() {
	l.f.Close()
	<-l.done
}

// upWaiter is a request waiting for its backend's answer in the lot. It lives
// in the request's scratch state; the lot signals ch when the backend's
// descriptor becomes readable.
type upWaiter struct {
	ch    chan struct{}
	timer *time.Timer
}

// awaitUpstream waits, in the lot, until uc (a backend connection) has bytes,
// for at most d. It reads what is there into uc.R and returns the count; ok is
// false if uc cannot wait here (TLS, no descriptor), for the caller to wait in
// Go's poller instead.
//
// Waiting here rather than in Go's poller keeps the wait fair under load: Go
// looks for network events only when it runs out of runnable goroutines, while
// the lot is also polled by serving goroutines (poll), as an event loop would.
func (l *lot) awaitUpstream(w *upWaiter, uc *upstream.Conn, d time.Duration) (n int, err error, ok bool) {
	fd := uc.Fd()
	s := l.ups.slot(fd, true)
	if s == nil {
		return 0, nil, false
	}
	if uc.Watcher != l {
		// Register once per backend connection, edge-triggered, under its
		// descriptor's reference count.
		var regErr error
		if err := uc.Control(func(fd uintptr) { regErr = l.register(fd) }); err != nil || regErr != nil {
			return 0, nil, false
		}
		uc.Watcher = l
	}
	if w.ch == nil {
		w.ch = make(chan struct{}, 1)
	}
	select { // a wake-up left from an earlier wait
	case <-w.ch:
	default:
	}
	// Publish the wait, then read: bytes that came before are read now,
	// bytes that come after raise an event that finds the waiter.
	s.Store(w)
	l.waiting.Add(1)
	defer l.waiting.Add(-1)
	if n, err = uc.TryFill(); n > 0 || err != nil {
		s.CompareAndSwap(w, nil)
		return n, err, true
	}
	if w.timer == nil {
		w.timer = time.NewTimer(d)
	} else {
		w.timer.Reset(d)
	}
	select {
	case <-w.ch:
		w.timer.Stop()
	case <-w.timer.C:
		if s.CompareAndSwap(w, nil) {
			return 0, os.ErrDeadlineExceeded, true
		}
		<-w.ch // the lot claimed the waiter just now: its signal is coming
	}
	n, err = uc.TryFill()
	return n, err, true
}
