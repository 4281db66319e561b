package h1

import (
	"bytes"
	"errors"
	"strconv"
)

// Response is a parsed response head from a backend.
type Response struct {
	Minor   int
	Status  int
	Reason  []byte
	Headers []Header
	// ContentLength is -1 when absent.
	ContentLength int64
	Chunked       bool
	// Codings is set when Transfer-Encoding names a coding other than a
	// final chunked (gzip, ...): the body's bytes are in that coding, and a
	// relay must keep it (AppendCodings).
	Codings bool
	// Close is set when the backend will close the connection after the body.
	Close   bool
	HeadLen int
}

// Reset clears r for reuse.
func (r *Response) Reset() {
	h := r.Headers[:0]
	*r = Response{Headers: h, ContentLength: -1}
}

// Backend response refusals (answered 502 to the client).
var (
	ErrBadStatusLine = errors.New("malformed status line from backend")
	ErrBadRespHeader = errors.New("malformed header from backend")
	ErrBadRespLength = errors.New("invalid framing from backend")
	ErrRespTooLarge  = errors.New("backend response head too large")
)

// ParseResponse parses a response head at the start of buf. It is strict on
// framing and lenient elsewhere (it accepts bare LF line ends, as browsers do).
func ParseResponse(buf []byte, maxHead int, r *Response) error {
	end := -1
	for i := 0; i < len(buf); {
		j := bytes.IndexByte(buf[i:], '\n')
		if j < 0 {
			break
		}
		j += i
		lineLen := j - i
		if lineLen == 0 || (lineLen == 1 && buf[i] == '\r') {
			end = j + 1
			break
		}
		i = j + 1
	}
	if end < 0 {
		if len(buf) >= maxHead {
			return ErrRespTooLarge
		}
		return ErrNeedMore
	}
	if end > maxHead {
		return ErrRespTooLarge
	}
	r.Reset()
	r.HeadLen = end
	head := buf[:end]
	first := true
	clSeen, teSeen := false, false
	for len(head) > 0 {
		j := bytes.IndexByte(head, '\n')
		l := head[:j]
		head = head[j+1:]
		if len(l) > 0 && l[len(l)-1] == '\r' {
			l = l[:len(l)-1]
		}
		if len(l) == 0 {
			break
		}
		if first {
			first = false
			// HTTP/1.x SP 3DIGIT [SP reason]
			if len(l) < 12 || string(l[:7]) != "HTTP/1." || l[7] < '0' || l[7] > '9' || l[8] != ' ' {
				return ErrBadStatusLine
			}
			r.Minor = int(l[7] - '0')
			s, err := strconv.Atoi(string(l[9:12]))
			if err != nil || s < 100 || s > 999 {
				return ErrBadStatusLine
			}
			r.Status = s
			if len(l) > 12 {
				if l[12] != ' ' {
					return ErrBadStatusLine
				}
				r.Reason = l[13:]
				for _, c := range r.Reason {
					// A bare CR (or other control) in the reason phrase could
					// split the response for a lenient client.
					if (c < ' ' && c != '\t') || c == 0x7f {
						return ErrBadStatusLine
					}
				}
			}
			r.Close = r.Minor == 0
			continue
		}
		if l[0] == ' ' || l[0] == '\t' {
			return ErrBadRespHeader
		}
		colon := bytes.IndexByte(l, ':')
		if colon <= 0 || !IsToken(l[:colon]) {
			return ErrBadRespHeader
		}
		name := l[:colon]
		val := trimOWS(l[colon+1:])
		for _, c := range val {
			if c == 0 || c == '\r' || c == '\n' {
				return ErrBadRespHeader
			}
		}
		if len(r.Headers) >= MaxHeaders {
			return ErrBadRespHeader
		}
		r.Headers = append(r.Headers, Header{Name: name, Value: val})
		switch {
		case EqualFold(name, "Content-Length"):
			// Identical repeated values (or "5, 5") are tolerated; differing ones are not.
			var n int64 = -1
			ok := true
			forEachToken(val, func(tok []byte) {
				v, good := parseContentLength(tok)
				if !good || (n >= 0 && v != n) {
					ok = false
				}
				n = v
			})
			if !ok || n < 0 || (clSeen && n != r.ContentLength) {
				return ErrBadRespLength
			}
			clSeen = true
			r.ContentLength = n
		case EqualFold(name, "Transfer-Encoding"):
			teSeen = true
			n := 0
			forEachToken(val, func([]byte) { n++ })
			chunkedLast := lastTokenIsChunked(val)
			// Any coding but a lone final chunked: gzip, "gzip, chunked".
			r.Codings = r.Codings || n > 1 || (n == 1 && !chunkedLast)
			if chunkedLast {
				r.Chunked = true
			} else {
				// Not chunked-final: the body runs until close (RFC 9112 6.3).
				r.Chunked = false
				r.Close = true
			}
		case EqualFold(name, "Connection"):
			forEachToken(val, func(tok []byte) {
				if EqualFold(tok, "close") {
					r.Close = true
				} else if EqualFold(tok, "keep-alive") && r.Minor == 0 {
					r.Close = false
				}
			})
		}
	}
	if first {
		// The head was a lone empty line: no status line at all.
		return ErrBadStatusLine
	}
	if teSeen && !r.Chunked {
		// A transfer coding other than chunked last: the body runs until
		// close and Content-Length must be ignored (RFC 9112 6.3).
		r.ContentLength = -1
	}
	if r.Chunked {
		// Transfer-Encoding overrides Content-Length (RFC 9112 6.3); the
		// connection is not reused since the backend framed ambiguously.
		if clSeen {
			r.ContentLength = -1
			r.Close = true
		}
	}
	return nil
}

// AppendCodings appends, comma-separated, every transfer coding of r's
// Transfer-Encoding fields except a final chunked (the framing a relay
// replaces with its own), each followed by ", ". With none it appends nothing.
func (r *Response) AppendCodings(dst []byte) []byte {
	last := -1 // index in r.Headers of the last Transfer-Encoding field
	for i := range r.Headers {
		if EqualFold(r.Headers[i].Name, "Transfer-Encoding") {
			last = i
		}
	}
	// Each token is written when the next one is seen, so the very last one
	// can be left out when it is the final chunked.
	var pending []byte
	for i := 0; i <= last; i++ {
		if h := &r.Headers[i]; EqualFold(h.Name, "Transfer-Encoding") {
			forEachToken(h.Value, func(tok []byte) {
				if pending != nil {
					dst = append(append(dst, pending...), ',', ' ')
				}
				pending = tok
			})
		}
	}
	if pending != nil && !r.Chunked {
		dst = append(append(dst, pending...), ',', ' ')
	}
	return dst
}

// BodylessStatus reports statuses that never carry a body.
func BodylessStatus(s int) bool {
	return (s >= 100 && s < 200) || s == 204 || s == 304
}
