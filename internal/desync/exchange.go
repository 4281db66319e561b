package desync

// One exchange with the proxy under test: write, read the answer head, drain.

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// outcome is what the client side of one exchange saw.
type outcome struct {
	status int
	closed bool
	note   string
}

// exchange writes raw to a new connection to addr and reads the response.
// The write runs on its own goroutine, so a proxy that answers before
// reading the whole request is still heard; it is joined before returning.
func exchange(addr string, raw []byte) (outcome, error) {
	var out outcome
	deadline := time.Now().Add(ResponseTimeout)
	d := net.Dialer{Deadline: deadline}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		return out, err
	}
	wdone := make(chan struct{})
	defer func() {
		conn.Close()
		<-wdone
	}()
	_ = conn.SetDeadline(deadline)
	go func() {
		defer close(wdone)
		_, _ = conn.Write(raw)
	}()
	br := bufio.NewReader(conn)
	status, err := readResponseHead(br)
	switch {
	case err == nil:
		out.status = status
	case isTimeout(err):
		out.status = StatusTimeout
		return out, nil
	case errors.Is(err, errNotHTTP):
		out.note = err.Error()
		// Not a response; see whether the proxy closes.
		_ = conn.SetReadDeadline(time.Now().Add(drainTimeout))
		if _, derr := io.Copy(io.Discard, br); isTimeout(derr) {
			out.status = StatusTimeout
			return out, nil
		}
		out.status, out.closed = StatusClosed, true
		return out, nil
	default: // EOF, reset: closed without a response
		out.status, out.closed = StatusClosed, true
		return out, nil
	}
	// Let the write finish (the proxy may have answered early), then
	// half-close so that a keep-alive proxy sees EOF and closes.
	select {
	case <-wdone:
	case <-time.After(drainTimeout):
		_ = conn.SetWriteDeadline(time.Now())
		<-wdone
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
	_ = conn.SetReadDeadline(time.Now().Add(drainTimeout))
	_, derr := io.Copy(io.Discard, br)
	out.closed = !isTimeout(derr)
	return out, nil
}

var errNotHTTP = errors.New("response is not HTTP")

// readResponseHead reads response heads until a non-1xx one (101 counts as
// final) and returns its status code.
func readResponseHead(br *bufio.Reader) (int, error) {
	for {
		line, err := readLine(br)
		if err != nil {
			return 0, err
		}
		// HTTP-version SP 3DIGIT SP reason (RFC 9112 section 4).
		if len(line) < 12 || !strings.HasPrefix(line, "HTTP/1.") || line[8] != ' ' ||
			(len(line) > 12 && line[12] != ' ') {
			return 0, fmt.Errorf("%w: %q", errNotHTTP, truncate(line, 40))
		}
		status, perr := strconv.Atoi(line[9:12])
		if perr != nil || status < 100 {
			return 0, fmt.Errorf("%w: %q", errNotHTTP, truncate(line, 40))
		}
		for {
			h, err := readLine(br)
			if err != nil {
				return 0, err
			}
			if h == "" {
				break
			}
		}
		if status >= 200 || status == 101 {
			return status, nil
		}
	}
}

// readLine reads one LF-terminated line of at most 16 KiB, without CRLF.
func readLine(br *bufio.Reader) (string, error) {
	var b []byte
	for {
		chunk, err := br.ReadSlice('\n')
		b = append(b, chunk...)
		if err == nil {
			return strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r"), nil
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			if len(b) > 0 && errors.Is(err, io.EOF) {
				return "", fmt.Errorf("%w: truncated %q", errNotHTTP, truncate(string(b), 40))
			}
			return "", err
		}
		if len(b) > 16<<10 {
			return "", fmt.Errorf("%w: line over 16 KiB", errNotHTTP)
		}
	}
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}
