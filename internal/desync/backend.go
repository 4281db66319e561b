package desync

import (
	"bytes"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Recorder reports what reached the backend behind the proxy under test.
// Judge calls both methods from its own goroutine while the backend may be
// serving connections concurrently; neither may block for long.
type Recorder interface {
	// Reset forgets every request recorded so far. Bytes that arrive after
	// Reset belong to the next case, even on connections opened before.
	Reset()
	// Requests returns the raw bytes of each request received since the
	// last Reset, in the order they completed, followed by any request still
	// being received (it reached the backend too). Callers must not modify
	// the returned slices.
	Requests() [][]byte
}

// RecordingBackend is an HTTP/1.1 origin on 127.0.0.1 that records the exact
// bytes of every request it receives. It reads raw TCP, not net/http, so it
// sees what the proxy really sent. It splits requests using Content-Length
// or a final chunked transfer coding (anything else has no body), answers
// each with "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" (without the
// body for HEAD, RFC 9110 section 9.3.2), keeps connections alive until the
// peer closes them or sends "Connection: close", and closes a connection
// whose chunked body is malformed, without answering.
//
// It implements Recorder. All methods are safe for concurrent use.
type RecordingBackend struct {
	ln net.Listener
	wg sync.WaitGroup // accept loop and connection goroutines

	mu     sync.Mutex
	gen    uint64 // incremented by Reset
	reqs   [][]byte
	conns  map[*recConn]struct{}
	closed bool
}

// recConn is one accepted connection. pending and pendingGen are guarded by
// RecordingBackend.mu.
type recConn struct {
	c          net.Conn
	pending    []byte // bytes of a request not yet complete
	pendingGen uint64 // generation in which pending's first byte arrived
}

const (
	maxHead    = 64 << 10
	maxRequest = 128 << 20
	// writeTimeout bounds each response write, so Close never waits on a
	// peer that stopped reading for longer than this.
	writeTimeout = 2 * time.Second
)

var _ Recorder = (*RecordingBackend)(nil)

// NewRecordingBackend starts a backend listening on 127.0.0.1 on a free
// port. Call Close to stop it.
func NewRecordingBackend() (*RecordingBackend, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	b := &RecordingBackend{ln: ln, conns: make(map[*recConn]struct{})}
	b.wg.Add(1)
	go b.acceptLoop()
	return b, nil
}

// Addr is the host:port the backend listens on.
func (b *RecordingBackend) Addr() string { return b.ln.Addr().String() }

// Reset implements Recorder.
func (b *RecordingBackend) Reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.gen++
	b.reqs = nil
}

// Requests implements Recorder. Requests still being received come last, in
// no particular order among themselves.
func (b *RecordingBackend) Requests() [][]byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([][]byte, 0, len(b.reqs)+len(b.conns))
	out = append(out, b.reqs...)
	for rc := range b.conns {
		if len(rc.pending) > 0 && rc.pendingGen == b.gen {
			out = append(out, bytes.Clone(rc.pending))
		}
	}
	return out
}

// Close stops the listener and every connection and waits for their
// goroutines, which takes at most writeTimeout. It may be called more than
// once.
func (b *RecordingBackend) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	conns := make([]*recConn, 0, len(b.conns))
	for rc := range b.conns {
		conns = append(conns, rc)
	}
	b.mu.Unlock()
	err := b.ln.Close()
	for _, rc := range conns {
		rc.c.Close()
	}
	b.wg.Wait()
	return err
}

func (b *RecordingBackend) acceptLoop() {
	defer b.wg.Done()
	for {
		c, err := b.ln.Accept()
		if err != nil {
			// Closed by Close, or a listener failure that a test backend
			// does not try to survive.
			return
		}
		rc := &recConn{c: c}
		b.mu.Lock()
		if b.closed {
			b.mu.Unlock()
			c.Close()
			return
		}
		b.conns[rc] = struct{}{}
		// Safe: this goroutine's own count keeps the group above zero.
		b.wg.Add(1)
		b.mu.Unlock()
		go b.serve(rc)
	}
}

// serve reads requests from one connection until it fails or closes.
func (b *RecordingBackend) serve(rc *recConn) {
	defer b.wg.Done()
	defer b.drop(rc)
	buf := make([]byte, 32<<10)
	for {
		n, rerr := rc.c.Read(buf)
		if n > 0 {
			heads, closeAfter := b.consume(rc, buf[:n])
			if len(heads) > 0 {
				var out bytes.Buffer
				for _, head := range heads {
					out.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n")
					if !head {
						out.WriteString("ok")
					}
				}
				_ = rc.c.SetWriteDeadline(time.Now().Add(writeTimeout))
				if _, err := rc.c.Write(out.Bytes()); err != nil {
					return
				}
			}
			if closeAfter {
				return
			}
		}
		if rerr != nil {
			return
		}
	}
}

// consume appends data to rc's pending bytes and cuts off every complete
// request, recording it. For each, it reports whether it was a HEAD request;
// closeAfter is set when the connection must be closed after answering.
func (b *RecordingBackend) consume(rc *recConn, data []byte) (heads []bool, closeAfter bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(rc.pending) == 0 {
		rc.pendingGen = b.gen
	}
	rc.pending = append(rc.pending, data...)
	for {
		// RFC 9112 section 2.2: ignore empty lines before a request line.
		trimmed := bytes.TrimLeft(rc.pending, "\r\n")
		if len(trimmed) != len(rc.pending) {
			rc.pending = append([]byte(nil), trimmed...)
			rc.pendingGen = b.gen
		}
		if len(rc.pending) == 0 {
			return heads, closeAfter
		}
		fr, err := frameRequest(rc.pending)
		if err != nil {
			// Leave the bytes pending: drop records them when the
			// connection closes.
			return heads, true
		}
		if !fr.complete {
			return heads, closeAfter
		}
		if rc.pendingGen == b.gen {
			b.reqs = append(b.reqs, bytes.Clone(rc.pending[:fr.size]))
		}
		rc.pending = append([]byte(nil), rc.pending[fr.size:]...)
		rc.pendingGen = b.gen
		heads = append(heads, fr.head)
		if fr.close {
			return heads, true
		}
	}
}

// drop records rc's incomplete request, if any, and closes rc. Recording
// first means a peer that sees the close also sees the record.
func (b *RecordingBackend) drop(rc *recConn) {
	b.mu.Lock()
	if len(rc.pending) > 0 && rc.pendingGen == b.gen {
		b.reqs = append(b.reqs, rc.pending)
	}
	rc.pending = nil
	delete(b.conns, rc)
	b.mu.Unlock()
	rc.c.Close()
}

// framed is where a request at the start of a buffer ends.
type framed struct {
	size     int  // bytes of the whole request, when complete
	complete bool // the buffer holds the whole request
	head     bool // the method is HEAD
	close    bool // the request asked for Connection: close
}

// frameRequest finds the end of the request at the start of b. The head
// ends at the first empty line (lines end in LF, an optional CR before it
// is ignored). The body is chunked when the last transfer coding is chunked,
// else Content-Length bytes when the first Content-Length field is a valid
// decimal number, else empty.
func frameRequest(b []byte) (framed, error) {
	var fr framed
	var lines []string
	pos := 0
	for {
		i := bytes.IndexByte(b[pos:], '\n')
		if i < 0 {
			if len(b) > maxHead {
				return fr, errTooLarge
			}
			return fr, nil
		}
		line := bytes.TrimSuffix(b[pos:pos+i], []byte("\r"))
		pos += i + 1
		if pos > maxHead {
			return fr, errTooLarge
		}
		if len(line) == 0 {
			break
		}
		lines = append(lines, string(line))
	}
	if len(lines) == 0 {
		// Callers strip leading empty lines; be safe anyway.
		fr.size, fr.complete = pos, true
		return fr, nil
	}
	method, _, _ := strings.Cut(lines[0], " ")
	fr.head = method == "HEAD"
	var cl, te []string
	for _, l := range lines[1:] {
		name, value, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		value = strings.Trim(value, " \t")
		switch strings.ToLower(name) {
		case "content-length":
			cl = append(cl, value)
		case "transfer-encoding":
			te = append(te, value)
		case "connection":
			for _, tok := range strings.Split(value, ",") {
				if strings.EqualFold(strings.TrimSpace(tok), "close") {
					fr.close = true
				}
			}
		}
	}
	if cs := codings(te); len(cs) > 0 && cs[len(cs)-1] == "chunked" {
		n, ok, err := chunkedLen(b[pos:])
		if err != nil {
			return fr, err
		}
		if !ok {
			if len(b) > maxRequest {
				return fr, errTooLarge
			}
			return fr, nil
		}
		fr.size, fr.complete = pos+n, true
		return fr, nil
	}
	if len(cl) > 0 {
		if n, err := strconv.ParseInt(cl[0], 10, 64); err == nil && n >= 0 {
			if n > maxRequest {
				return fr, errTooLarge
			}
			if int64(len(b)-pos) < n {
				return fr, nil
			}
			fr.size, fr.complete = pos+int(n), true
			return fr, nil
		}
	}
	fr.size, fr.complete = pos, true
	return fr, nil
}
