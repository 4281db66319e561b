package proxy

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"time"

	"fulcrum/internal/h1"
)

// readHead reads until a whole request head is buffered and parsed.
func (c *clientConn) readHead(set *Settings) error {
	max := set.Limits.MaxHeaderBytes
	if max <= 0 {
		max = 64 << 10
	}
	// The head usually arrives whole with the first read, which the idle
	// deadline covers (data is already there). Only a head that arrives in
	// pieces gets the read_header_timeout deadline, armed at the first
	// incomplete parse, so the common case sets no timer.
	//
	// The head is parsed only once its end is in the buffer: scanned marks
	// how far the buffered bytes have been searched for it, so a head that
	// trickles in byte by byte costs linear, not quadratic, time.
	// On a new connection the deadline armed at accept already bounds the head.
	armed := c.served == 0 && set.Limits.ReadHeaderTimeout > 0
	scanned := 0
	for {
		if data := c.br.Buf[c.br.R:c.br.W]; len(data) > 0 {
			from := scanned - 2
			if from < 0 {
				from = 0
			}
			complete := data[0] == '\r' || data[0] == '\n' ||
				bytes.Index(data[from:], crlfcrlfTail) >= 0 || bytes.Index(data[from:], lflf) >= 0
			scanned = len(data)
			var err error
			if complete || len(data) >= max {
				err = h1.ParseRequest(data, max, &c.req)
			} else {
				err = h1.ErrNeedMore
			}
			if err == nil {
				if armed && set.Limits.ReadHeaderTimeout > 0 {
					// The head is in: its deadline must not outlive it (a
					// busy connection may never wait again to re-arm).
					c.tc.ArmRead(0)
				}
				return nil
			}
			if err != h1.ErrNeedMore {
				return err
			}
			if !armed {
				armed = true
				if set.Limits.ReadHeaderTimeout > 0 {
					c.tc.SetReadDeadline(time.Now().Add(set.Limits.ReadHeaderTimeout))
				}
			}
		}
		if c.br.R > 0 && c.br.W == len(c.br.Buf) {
			copy(c.br.Buf, c.br.Buf[c.br.R:c.br.W])
			c.br.W -= c.br.R
			c.br.R = 0
		}
		if _, err := c.br.Fill(max); err != nil {
			if err == h1.ErrBufferFull {
				return h1.ErrHeadTooLarge
			}
			if c.br.W > c.br.R && !isClosedErr(err) {
				// A partial head that timed out or was cut: answer 408/400 if we can.
				if isTimeout(err) {
					return errRequestTimeout
				}
			}
			return err
		}
	}
}

var (
	crlfcrlfTail = []byte("\n\r\n")
	lflf         = []byte("\n\n")
)

var errRequestTimeout = &h1.Error{Status: 408, Msg: "request timeout"}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded)
}

func isClosedErr(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.ECONNRESET)
}
