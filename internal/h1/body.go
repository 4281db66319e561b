package h1

import (
	"bytes"
	"errors"
	"io"
	"net"
	"strconv"
)

// Reader is a minimal buffered reader over a connection, exposing its buffer
// so that heads are parsed in place and bodies copied without extra copies.
// It is not safe for concurrent use.
type Reader struct {
	Conn net.Conn
	Buf  []byte
	R, W int
	// Err is the sticky read error.
	Err error
}

// Buffered returns the unread bytes.
func (b *Reader) Buffered() []byte { return b.Buf[b.R:b.W] }

// Discard consumes n buffered bytes.
func (b *Reader) Discard(n int) {
	b.R += n
	if b.R == b.W {
		b.R, b.W = 0, 0
	}
}

// Fill reads more bytes into the buffer, compacting first and growing it up to
// max when full. It returns the number of bytes read.
func (b *Reader) Fill(max int) (int, error) {
	if b.Err != nil {
		return 0, b.Err
	}
	if b.R > 0 && b.R == b.W {
		b.R, b.W = 0, 0
	}
	if b.W == len(b.Buf) {
		if b.R > 0 {
			copy(b.Buf, b.Buf[b.R:b.W])
			b.W -= b.R
			b.R = 0
		} else if len(b.Buf) < max {
			n := len(b.Buf) * 2
			if n > max {
				n = max
			}
			nb := make([]byte, n)
			copy(nb, b.Buf[:b.W])
			b.Buf = nb
		} else {
			return 0, ErrBufferFull
		}
	}
	n, err := b.Conn.Read(b.Buf[b.W:])
	b.W += n
	if err != nil && n == 0 {
		b.Err = err
		return 0, err
	}
	return n, nil
}

// ErrBufferFull is returned by Fill when the buffer is full and may not grow.
var ErrBufferFull = errors.New("h1: buffer full")

// ErrUnexpectedEOF is returned when a body ends before its framing says.
var ErrUnexpectedEOF = io.ErrUnexpectedEOF

// BodyError wraps a failure while copying a body, telling which side failed.
type BodyError struct {
	// Write is true when writing to the destination failed, false when reading
	// from the source failed (or the source's framing was malformed).
	Write bool
	Err   error
}

func (e *BodyError) Error() string {
	if e.Write {
		return "write: " + e.Err.Error()
	}
	return "read: " + e.Err.Error()
}

func (e *BodyError) Unwrap() error { return e.Err }

// CopyLength copies exactly n body bytes from src to dst.
func CopyLength(dst io.Writer, src *Reader, n int64) (int64, error) {
	var done int64
	for done < n {
		if src.R == src.W {
			if _, err := src.Fill(len(src.Buf)); err != nil {
				if err == io.EOF {
					err = ErrUnexpectedEOF
				}
				return done, &BodyError{false, err}
			}
		}
		chunk := src.Buf[src.R:src.W]
		if int64(len(chunk)) > n-done {
			chunk = chunk[:n-done]
		}
		w, err := dst.Write(chunk)
		done += int64(w)
		src.Discard(w)
		if err != nil {
			return done, &BodyError{true, err}
		}
	}
	return done, nil
}

// CopyUntilEOF copies src to dst until src ends. When chunk is set the output
// is chunked-encoded (and terminated).
func CopyUntilEOF(dst io.Writer, src *Reader, chunk bool, scratch []byte) (int64, error) {
	var done int64
	for {
		if src.R == src.W {
			if _, err := src.Fill(len(src.Buf)); err != nil {
				if err == io.EOF {
					break
				}
				return done, &BodyError{false, err}
			}
		}
		data := src.Buf[src.R:src.W]
		var err error
		if chunk {
			err = writeChunk(dst, data, scratch)
		} else {
			_, err = dst.Write(data)
		}
		src.Discard(len(data))
		done += int64(len(data))
		if err != nil {
			return done, &BodyError{true, err}
		}
	}
	if chunk {
		if _, err := io.WriteString(dst, "0\r\n\r\n"); err != nil {
			return done, &BodyError{true, err}
		}
	}
	return done, nil
}

func writeChunk(dst io.Writer, data []byte, scratch []byte) error {
	if len(data) == 0 {
		return nil
	}
	h := strconv.AppendInt(scratch[:0], int64(len(data)), 16)
	h = append(h, '\r', '\n')
	if _, err := dst.Write(h); err != nil {
		return err
	}
	if _, err := dst.Write(data); err != nil {
		return err
	}
	_, err := dst.Write(crlf)
	return err
}

var crlf = []byte("\r\n")

// ChunkedCopier decodes a chunked body strictly and writes it to dst, either
// re-encoded as chunked (Reencode) or as plain bytes. Chunk extensions are
// validated and dropped; trailer fields are validated and dropped.
type ChunkedCopier struct {
	Reencode bool
	// Limit, when > 0, bounds the decoded body size (ErrBodyTooLarge beyond).
	Limit int64
	// MaxLine bounds a chunk-size line or trailer line.
	MaxLine int
	scratch [32]byte
}

// Copy runs the copy to the end of the body.
func (c *ChunkedCopier) Copy(dst io.Writer, src *Reader) (int64, error) {
	maxLine := c.MaxLine
	if maxLine <= 0 {
		maxLine = 4096
	}
	var total int64
	for {
		line, err := readLine(src, maxLine)
		if err != nil {
			return total, &BodyError{false, err}
		}
		size, err := parseChunkSize(line)
		if err != nil {
			return total, &BodyError{false, err}
		}
		if size == 0 {
			break
		}
		if c.Limit > 0 && total+size > c.Limit {
			return total, &BodyError{false, ErrBodyTooLarge}
		}
		if c.Reencode {
			h := strconv.AppendInt(c.scratch[:0], size, 16)
			h = append(h, '\r', '\n')
			if _, err := dst.Write(h); err != nil {
				return total, &BodyError{true, err}
			}
		}
		n, err := CopyLength(dst, src, size)
		total += n
		if err != nil {
			return total, err
		}
		// Chunk data must be followed by exactly CRLF.
		for src.W-src.R < 2 {
			if _, err := src.Fill(len(src.Buf)); err != nil {
				if err == io.EOF {
					err = ErrUnexpectedEOF
				}
				return total, &BodyError{false, err}
			}
		}
		if src.Buf[src.R] != '\r' || src.Buf[src.R+1] != '\n' {
			return total, &BodyError{false, ErrBadChunk}
		}
		src.Discard(2)
		if c.Reencode {
			if _, err := dst.Write(crlf); err != nil {
				return total, &BodyError{true, err}
			}
		}
	}
	// Trailer section: header lines until an empty line.
	for i := 0; ; i++ {
		line, err := readLine(src, maxLine)
		if err != nil {
			return total, &BodyError{false, err}
		}
		if len(line) == 0 {
			break
		}
		if i >= MaxHeaders || line[0] == ' ' || line[0] == '\t' {
			return total, &BodyError{false, ErrBadChunk}
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 || !IsToken(line[:colon]) {
			return total, &BodyError{false, ErrBadChunk}
		}
		for _, ch := range line[colon+1:] {
			if (ch < ' ' && ch != '\t') || ch == 0x7f {
				return total, &BodyError{false, ErrBadChunk}
			}
		}
	}
	if c.Reencode {
		if _, err := io.WriteString(dst, "0\r\n\r\n"); err != nil {
			return total, &BodyError{true, err}
		}
	}
	return total, nil
}

// readLine returns the next CRLF-terminated line (without CRLF) and consumes
// it. A bare LF or CR is a framing error.
func readLine(src *Reader, max int) ([]byte, error) {
	for {
		buf := src.Buf[src.R:src.W]
		for i, c := range buf {
			if c == '\n' {
				// A line over max is refused even when it happens to be
				// buffered whole, so the verdict does not depend on how
				// the bytes arrived.
				if i >= max || i == 0 || buf[i-1] != '\r' {
					return nil, ErrBadChunk
				}
				line := buf[:i-1]
				for _, x := range line {
					if x == '\r' {
						return nil, ErrBadChunk
					}
				}
				src.R += i + 1
				return line, nil
			}
		}
		if len(buf) >= max {
			return nil, ErrBadChunk
		}
		// Make room: compact so the line can grow up to max.
		if src.R > 0 && src.W == len(src.Buf) {
			copy(src.Buf, src.Buf[src.R:src.W])
			src.W -= src.R
			src.R = 0
		}
		if _, err := src.Fill(max); err != nil {
			if err == io.EOF {
				err = ErrUnexpectedEOF
			}
			return nil, err
		}
	}
}

// parseChunkSize parses "HEX[;ext...]" strictly.
func parseChunkSize(line []byte) (int64, error) {
	var n int64
	i := 0
	for ; i < len(line); i++ {
		c := line[i]
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			d = c - 'A' + 10
		default:
			goto ext
		}
		if i >= 15 {
			return 0, ErrBadChunk
		}
		n = n<<4 | int64(d)
	}
ext:
	if i == 0 {
		return 0, ErrBadChunk
	}
	rest := line[i:]
	// Optional BWS then ";" extensions; only token/quoted-string-ish visible chars.
	for len(rest) > 0 && (rest[0] == ' ' || rest[0] == '\t') {
		rest = rest[1:]
	}
	if len(rest) > 0 {
		if rest[0] != ';' {
			return 0, ErrBadChunk
		}
		for _, c := range rest {
			if (c < ' ' && c != '\t') || c == 0x7f {
				return 0, ErrBadChunk
			}
		}
	}
	return n, nil
}

// ScanChunked checks the start of a chunked body held in buf, as far as buf
// goes, without consuming or copying anything: it returns ErrBadChunk when
// the bytes present already break the rules ChunkedCopier applies (with
// MaxLine maxLine), and nil when they are valid so far, whether or not the
// body is complete. A proxy can so refuse a malformed body that arrived with
// its head before forwarding anything.
func ScanChunked(buf []byte, maxLine int) error {
	if maxLine <= 0 {
		maxLine = 4096
	}
	// line returns the next CRLF-terminated line; ok is false when buf ends first.
	line := func() (l []byte, ok bool, err error) {
		i := bytes.IndexByte(buf, '\n')
		if i < 0 {
			if len(buf) >= maxLine {
				return nil, false, ErrBadChunk
			}
			return nil, false, nil
		}
		if i >= maxLine || i == 0 || buf[i-1] != '\r' {
			return nil, false, ErrBadChunk
		}
		l = buf[:i-1]
		if bytes.IndexByte(l, '\r') >= 0 {
			return nil, false, ErrBadChunk
		}
		buf = buf[i+1:]
		return l, true, nil
	}
	for {
		l, ok, err := line()
		if !ok {
			return err
		}
		size, err := parseChunkSize(l)
		if err != nil {
			return err
		}
		if size == 0 {
			break
		}
		if int64(len(buf)) < size+2 {
			if int64(len(buf)) == size+1 && buf[size] != '\r' {
				return ErrBadChunk
			}
			return nil
		}
		if buf[size] != '\r' || buf[size+1] != '\n' {
			return ErrBadChunk
		}
		buf = buf[size+2:]
	}
	for i := 0; ; i++ {
		l, ok, err := line()
		if !ok {
			return err
		}
		if len(l) == 0 {
			return nil
		}
		if i >= MaxHeaders || l[0] == ' ' || l[0] == '\t' {
			return ErrBadChunk
		}
		colon := bytes.IndexByte(l, ':')
		if colon <= 0 || !IsToken(l[:colon]) {
			return ErrBadChunk
		}
		for _, ch := range l[colon+1:] {
			if (ch < ' ' && ch != '\t') || ch == 0x7f {
				return ErrBadChunk
			}
		}
	}
}
