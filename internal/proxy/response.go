package proxy

import (
	"errors"
	"io"
	"runtime"
	"time"

	"fulcrum/internal/h1"
	"fulcrum/internal/metrics"
	"fulcrum/internal/pool"
	"fulcrum/internal/upstream"
)

// The HTTP/1.1 front's response side: reading a backend's response head and
// relaying the response to the client.

// readResponseHead reads the backend's response head into resp, waiting at
// most wait (response_header_timeout) for each read.
//
// The backend has just been sent the request: a read now would almost always
// find nothing. Letting the other runnable connections go first (one yield)
// gives the answer time to arrive, so that the next read usually finds it.
// Under light load nothing else is runnable and the yield returns at once.
//
// If the answer is not there, the wait happens in the lot, not in Go's poller:
// under load Go polls the network only when it runs out of runnable
// goroutines, so a goroutine waiting there can be passed over for
// milliseconds by connections that keep finding their data, while the lot is
// also polled by the serving goroutines, like an event loop. (TLS backends,
// and platforms without the lot, wait in Go's poller.)
func (c *clientConn) readResponseHead(uc *upstream.Conn, resp *h1.Response, wait time.Duration) error {
	// Reads that bypass uc.T (TryFill) still honour its read deadline: keep
	// it fresh (a lazy re-arm, usually one clock read), or a deadline armed on
	// an earlier exchange would fail this one.
	uc.T.ArmRead(wait)
	lot := c.srv.lot
	if wait <= 0 || uc.Fd() < 0 {
		lot = nil
	}
	yielded := false
	for {
		if uc.R.W > uc.R.R {
			err := h1.ParseResponse(uc.R.Buf[uc.R.R:uc.R.W], upstream.BufSize, resp)
			if err == nil {
				return nil
			}
			if err != h1.ErrNeedMore {
				return err
			}
		}
		var err error
		if !yielded {
			yielded = true
			runtime.Gosched()
			if lot != nil {
				lot.poll()
			} else if n, err := uc.TryFill(); err != nil {
				return responseReadError(err)
			} else if n > 0 {
				continue
			}
		}
		if lot != nil {
			var ok bool
			if _, err, ok = lot.awaitUpstream(&c.up, uc, wait); !ok {
				lot = nil
				continue
			}
		} else {
			_, err = uc.R.Fill(upstream.BufSize)
		}
		if err != nil {
			return responseReadError(err)
		}
	}
}

func responseReadError(err error) error {
	switch err {
	case h1.ErrBufferFull:
		return h1.ErrRespTooLarge
	case io.EOF:
		return io.ErrUnexpectedEOF
	}
	return err
}

// relayResponse writes the response head and body to the client and returns
// whether the client connection may be kept.
func (c *clientConn) relayResponse(set *Settings, snap *pool.Snapshot, mem *pool.Member, uc *upstream.Conn, resp *h1.Response, ri *reqInfo) bool {
	keep := ri.keepAlive && !c.srv.shutting.Load()
	noBody := ri.isHead || h1.BodylessStatus(resp.Status)
	// framing: -1 chunked to client, -3 close-delimited, >= 0 content length, -2 none.
	var frame int64
	switch {
	case noBody:
		frame = -2
	case resp.Chunked || resp.ContentLength < 0:
		if ri.minor == 1 {
			frame = -1
		} else {
			frame = -3
			keep = false
		}
	default:
		frame = resp.ContentLength
	}
	var cookie []byte
	if st := ri.sticky; st != nil && ri.stickyRes != stickyNone {
		used := mem.Backend.Index
		res := ri.stickyRes
		if res == stickyHit && used != ri.stickyIdx {
			res = stickyRepinned
		}
		cookie = st.setCookie(c.cookieBuf[:0], res, used, ri.stickyIdx, snap, resp, ri.appCookie, ri.https)
		c.cookieBuf = cookie[:0]
		if c.srv.metrics != nil {
			c.srv.metrics.Sticky(stickyLabels[res])
		}
	}
	c.relaying = true
	c.out = appendResponseHead(c.out[:0], resp, frame, !keep, cookie)
	if keep && ri.minor == 0 {
		// HTTP/1.0 closes by default: say that this connection stays open.
		c.out = append(c.out[:len(c.out)-2], "Connection: keep-alive\r\n\r\n"...)
	}
	if ri.splitSet != 0 || !ri.entry.rt.ResponseHeaders().Empty() {
		c.out = c.finishResponseHead(c.out, ri)
	}
	uc.R.Discard(resp.HeadLen)
	c.tc.WriteTimeout = set.Limits.WriteTimeout
	c.markBody(len(c.out))

	var err error
	upKeep := !resp.Close
	switch {
	case frame == -2:
		// HEAD, 1xx, 204, 304: no body follows, whatever the headers say.
		_, err = c.tc.Write(c.out)
	case frame >= 0:
		// Coalesce head and a small, fully buffered body into one write.
		if buf := uc.R.Buffered(); int64(len(buf)) >= frame && frame <= 32<<10 {
			c.out = append(c.out, buf[:frame]...)
			uc.R.Discard(int(frame))
			_, err = c.tc.Write(c.out)
		} else if _, err = c.tc.Write(c.out); err == nil {
			_, err = h1.CopyLength(&c.tc, &uc.R, frame)
		}
	case frame == -1 || frame == -3:
		// -1 re-chunks for an HTTP/1.1 client; -3 sends the body as is
		// until close to an HTTP/1.0 one.
		reencode := frame == -1
		if _, err = c.tc.Write(c.out); err == nil {
			if resp.Chunked {
				c.chunk = h1.ChunkedCopier{Reencode: reencode, MaxLine: 4096}
				_, err = c.chunk.Copy(&c.tc, &uc.R)
			} else {
				_, err = h1.CopyUntilEOF(&c.tc, &uc.R, reencode, c.num[:])
				upKeep = false
			}
		}
	}
	c.out = c.out[:0]
	if err != nil {
		var be *h1.BodyError
		if errors.As(err, &be) && !be.Write {
			// The backend broke mid-body: the client's response is cut short.
			c.backendError(mem, metrics.ErrTransport, err)
		}
		mem.Conns.Discard(uc)
		return false
	}
	if upKeep {
		mem.Conns.Put(uc)
	} else {
		mem.Conns.Discard(uc)
	}
	return keep
}
