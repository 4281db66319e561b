package proxy

import "sync/atomic"

// maxIdleWorkers bounds the serving goroutines kept waiting for a connection
// to serve. Each keeps the stack that serving grew (8–16 KiB), so the bound
// is also a bound on that memory.
const maxIdleWorkers = 64

// workers hands connections to be served to goroutines that already exist.
//
// A goroutine started per connection begins with the minimum stack and grows
// it while serving its request (newstack/copystack, several copies); under a
// new connection per request that was over a tenth of the balancer's CPU. A
// worker that finished one connection waits here for the next, with its stack
// already grown. Idle connections still hold no goroutine: a worker is only
// ever busy serving or idle here, and at most maxIdleWorkers are idle.
type workers struct {
	ch   chan *clientConn // unbuffered: a send succeeds only into a waiting worker
	idle atomic.Int32
	// started counts the goroutines started (for tests).
	started atomic.Int64
	quit    chan struct{} // closed by Shutdown: idle workers exit
}

func newWorkers() *workers {
	return &workers{ch: make(chan *clientConn), quit: make(chan struct{})}
}

// serve has c served by an idle worker, or by a new goroutine that becomes
// one afterwards. It never blocks.
func (w *workers) serve(c *clientConn) {
	select {
	case w.ch <- c:
	default:
		w.started.Add(1)
		go w.run(c)
	}
}

func (w *workers) run(c *clientConn) {
	for {
		c.serve()
		if w.idle.Add(1) > maxIdleWorkers {
			w.idle.Add(-1)
			return
		}
		select {
		case c = <-w.ch:
			w.idle.Add(-1)
		case <-w.quit:
			w.idle.Add(-1)
			return
		}
	}
}

// stop lets the idle workers exit; connections handed over later are still
// served, each by a goroutine that then exits.
func (w *workers) stop() {
	select {
	case <-w.quit:
	default:
		close(w.quit)
	}
}
