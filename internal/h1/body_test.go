package h1_test

import (
	"bytes"
	"errors"
	"io"
	"net"
	"strings"
	"testing"

	"fulcrum/internal/h1"
)

// byteConn is a net.Conn that reads from a byte slice, at most step bytes
// per Read (0: as much as asked). Only Read is implemented.
type byteConn struct {
	net.Conn
	r    *bytes.Reader
	step int
}

func (c *byteConn) Read(p []byte) (int, error) {
	if c.step > 0 && len(p) > c.step {
		p = p[:c.step]
	}
	return c.r.Read(p)
}

func newReader(data string, step, size int) *h1.Reader {
	return &h1.Reader{Conn: &byteConn{r: bytes.NewReader([]byte(data)), step: step}, Buf: make([]byte, size)}
}

// failWriter fails every write.
type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("sink failed") }

func TestChunkedCopier(t *testing.T) {
	cases := []struct {
		name    string
		in      string
		decoded string
		err     error // nil, h1.ErrBadChunk, io.ErrUnexpectedEOF, h1.ErrBodyTooLarge
		rest    string
	}{
		{name: "one chunk", in: "5\r\nhello\r\n0\r\n\r\n", decoded: "hello"},
		{name: "several chunks", in: "5\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\n\r\n", decoded: "hello world"},
		{name: "empty body", in: "0\r\n\r\n", decoded: ""},
		{name: "upper and leading zero hex", in: "00A\r\n0123456789\r\n000\r\n\r\n", decoded: "0123456789"},
		{name: "extensions dropped", in: "5;a=b;c=\"d e\"\r\nhello\r\n0;last\r\n\r\n", decoded: "hello"},
		{name: "BWS before extension", in: "5 ;a=b\r\nhello\r\n0\r\n\r\n", decoded: "hello"},
		{name: "trailers dropped", in: "5\r\nhello\r\n0\r\nX-Sum: 1\r\nY: \t2\r\n\r\n", decoded: "hello"},
		{name: "pipelined rest stays", in: "5\r\nhello\r\n0\r\n\r\nGET / HTTP/1.1\r\n", decoded: "hello", rest: "GET / HTTP/1.1\r\n"},
		{name: "CRLF in data", in: "4\r\n\r\n\r\n\r\n0\r\n\r\n", decoded: "\r\n\r\n"},
		{name: "not hex", in: "zz\r\nhello\r\n0\r\n\r\n", err: h1.ErrBadChunk},
		{name: "empty size", in: "\r\nhello\r\n0\r\n\r\n", err: h1.ErrBadChunk},
		{name: "sign", in: "+5\r\nhello\r\n0\r\n\r\n", err: h1.ErrBadChunk},
		{name: "0x prefix", in: "0x5\r\nhello\r\n0\r\n\r\n", err: h1.ErrBadChunk},
		{name: "leading space", in: " 5\r\nhello\r\n0\r\n\r\n", err: h1.ErrBadChunk},
		{name: "size overflow", in: "10000000000000000\r\nx\r\n0\r\n\r\n", err: h1.ErrBadChunk},
		{name: "16 hex digits", in: "ffffffffffffffff\r\nx\r\n0\r\n\r\n", err: h1.ErrBadChunk},
		{name: "bare LF after size", in: "5\nhello\r\n0\r\n\r\n", err: h1.ErrBadChunk},
		{name: "bare CR in size line", in: "5\r;x\r\nhello\r\n0\r\n\r\n", err: h1.ErrBadChunk},
		{name: "CTL in extension", in: "5;a=\x01\r\nhello\r\n0\r\n\r\n", err: h1.ErrBadChunk},
		{name: "data longer than size", in: "3\r\nhello\r\n0\r\n\r\n", err: h1.ErrBadChunk},
		{name: "data shorter than size", in: "7\r\nhello\r\n0\r\n\r\n", err: h1.ErrBadChunk},
		{name: "bare LF after data", in: "5\r\nhello\n0\r\n\r\n", err: h1.ErrBadChunk},
		{name: "trailer obs-fold", in: "0\r\nX: a\r\n b\r\n\r\n", err: h1.ErrBadChunk},
		{name: "trailer without colon", in: "0\r\nXY\r\n\r\n", err: h1.ErrBadChunk},
		{name: "trailer bad name", in: "0\r\nX Y: a\r\n\r\n", err: h1.ErrBadChunk},
		{name: "trailer NUL", in: "0\r\nX: a\x00\r\n\r\n", err: h1.ErrBadChunk},
		{name: "trailer bare LF", in: "0\r\nX: a\n\r\n", err: h1.ErrBadChunk},
		{name: "cut in size", in: "5", err: io.ErrUnexpectedEOF},
		{name: "cut in data", in: "5\r\nhel", err: io.ErrUnexpectedEOF},
		{name: "cut before data CRLF", in: "5\r\nhello", err: io.ErrUnexpectedEOF},
		{name: "no final CRLF", in: "5\r\nhello\r\n0\r\n", err: io.ErrUnexpectedEOF},
		{name: "at limit", in: "5\r\nhello\r\nb\r\n world worl\r\n0\r\n\r\n", decoded: "hello world worl"},
		{name: "over limit", in: "5\r\nhello\r\nc\r\n world world\r\n0\r\n\r\n", err: h1.ErrBodyTooLarge},
		{name: "long extension", in: "5;" + strings.Repeat("e", 5000) + "\r\nhello\r\n0\r\n\r\n", err: h1.ErrBadChunk},
	}
	for _, tc := range cases {
		for _, step := range []int{0, 1, 3} {
			for _, reencode := range []bool{false, true} {
				var out bytes.Buffer
				src := newReader(tc.in, step, 4096)
				cc := h1.ChunkedCopier{Reencode: reencode, Limit: 16, MaxLine: 4096}
				n, err := cc.Copy(&out, src)
				if tc.err != nil {
					var be *h1.BodyError
					if !errors.Is(err, tc.err) || !errors.As(err, &be) || be.Write {
						t.Errorf("%s (step %d): err %v, want a read BodyError wrapping %v", tc.name, step, err, tc.err)
					}
					continue
				}
				if err != nil {
					t.Errorf("%s (step %d): %v", tc.name, step, err)
					continue
				}
				want := tc.decoded
				if reencode {
					want = reencodeString(tc.decoded, tc.in)
				}
				if out.String() != want || n != int64(len(tc.decoded)) {
					t.Errorf("%s (step %d, reencode %v): wrote %q (n=%d), want %q", tc.name, step, reencode, out.String(), n, want)
				}
				// What follows the body is left in the reader untouched
				// (step 0 reads everything there is at once).
				if step == 0 && string(src.Buffered()) != tc.rest {
					t.Errorf("%s: left %q in the reader, want %q", tc.name, src.Buffered(), tc.rest)
				}
			}
		}
	}
}

// reencodeString is the canonical re-encoding the copier writes: each
// incoming chunk's data with a bare hex size, then "0\r\n\r\n".
func reencodeString(decoded, in string) string {
	var b strings.Builder
	rest := in
	for {
		line, after, _ := strings.Cut(rest, "\r\n")
		sizeStr := strings.TrimRight(strings.SplitN(line, ";", 2)[0], " \t")
		var size int
		for _, c := range strings.ToLower(sizeStr) {
			size = size*16 + strings.IndexRune("0123456789abcdef", c)
		}
		if size == 0 {
			break
		}
		b.WriteString(strings.ToLower(strings.TrimLeft(sizeStr, "0")))
		b.WriteString("\r\n" + after[:size] + "\r\n")
		rest = after[size+2:]
	}
	b.WriteString("0\r\n\r\n")
	_ = decoded
	return b.String()
}

// TestScanChunkedAgreesWithCopier: ScanChunked refuses exactly the bodies
// whose bytes ChunkedCopier finds malformed, and no prefix of a valid body.
func TestScanChunkedAgreesWithCopier(t *testing.T) {
	inputs := []string{
		"5\r\nhello\r\n0\r\n\r\n", "5;a=b\r\nhello\r\n0\r\nX: y\r\n\r\nNEXT", "0\r\n\r\n",
		"zz\r\n", "5\nhello", "5\r\nhelloX\r\n", "5\r\nhello\r", "5\r\nhello\rX", "5\r\nhelloX", "0\r\nX: a\r\n b\r\n\r\n",
		"0\r\nX Y: a\r\n\r\n", "0\r\nX: \x01\r\n\r\n", "5;" + strings.Repeat("e", 200) + "\r\nhello\r\n0\r\n\r\n",
		strings.Repeat("e", 300), "ffffffffffffffff\r\n", "5\r;\r\n", "5\r\nhel",
	}
	for _, in := range inputs {
		var out strings.Builder
		cc := h1.ChunkedCopier{MaxLine: 128}
		_, err := cc.Copy(&out, newReader(in, 0, 512))
		scan := h1.ScanChunked([]byte(in), 128)
		if (errors.Is(err, h1.ErrBadChunk) && scan == nil) || (err == nil && scan != nil) || (scan != nil && scan != h1.ErrBadChunk) {
			t.Errorf("%q: copier %v, scan %v", in, err, scan)
		}
		if err == nil {
			for k := 0; k <= len(in); k++ {
				if e := h1.ScanChunked([]byte(in[:k]), 128); e != nil {
					t.Errorf("%q: prefix %d refused: %v", in, k, e)
				}
			}
		}
	}
	if n := testing.AllocsPerRun(100, func() { h1.ScanChunked([]byte("5;a=b\r\nhello\r\n0\r\nX: y\r\n\r\n"), 4096) }); n != 0 {
		t.Errorf("ScanChunked allocates %v times", n)
	}
}

func TestChunkedCopierWriteError(t *testing.T) {
	cc := h1.ChunkedCopier{Reencode: true}
	_, err := cc.Copy(failWriter{}, newReader("5\r\nhello\r\n0\r\n\r\n", 0, 4096))
	var be *h1.BodyError
	if !errors.As(err, &be) || !be.Write {
		t.Errorf("err %v, want a write BodyError", err)
	}
}

func TestCopyLength(t *testing.T) {
	var out bytes.Buffer
	src := newReader("hello worldNEXT", 2, 4)
	n, err := h1.CopyLength(&out, src, 11)
	if err != nil || n != 11 || out.String() != "hello world" {
		t.Fatalf("CopyLength: %d %v %q", n, err, out.String())
	}
	rest, _ := io.ReadAll(io.MultiReader(bytes.NewReader(src.Buffered()), src.Conn))
	if string(rest) != "NEXT" {
		t.Errorf("rest %q", rest)
	}
	out.Reset()
	_, err = h1.CopyLength(&out, newReader("short", 0, 16), 10)
	var be *h1.BodyError
	if !errors.Is(err, io.ErrUnexpectedEOF) || !errors.As(err, &be) || be.Write {
		t.Errorf("short body: %v", err)
	}
	_, err = h1.CopyLength(failWriter{}, newReader("hello", 0, 16), 5)
	if !errors.As(err, &be) || !be.Write {
		t.Errorf("failing sink: %v", err)
	}
}

func TestCopyUntilEOF(t *testing.T) {
	var out bytes.Buffer
	scratch := make([]byte, 32)
	n, err := h1.CopyUntilEOF(&out, newReader("hello world", 4, 8), false, scratch)
	if err != nil || n != 11 || out.String() != "hello world" {
		t.Errorf("plain: %d %v %q", n, err, out.String())
	}
	out.Reset()
	_, err = h1.CopyUntilEOF(&out, newReader("hello world", 4, 8), true, scratch)
	if err != nil {
		t.Fatal(err)
	}
	// Re-chunked: decoding it gives the bytes back.
	var dec bytes.Buffer
	cc := h1.ChunkedCopier{}
	if _, err := cc.Copy(&dec, newReader(out.String(), 0, 64)); err != nil || dec.String() != "hello world" {
		t.Errorf("chunked output %q decodes to %q, %v", out.String(), dec.String(), err)
	}
	out.Reset()
	if _, err := h1.CopyUntilEOF(&out, newReader("", 0, 8), true, scratch); err != nil || out.String() != "0\r\n\r\n" {
		t.Errorf("empty chunked: %q %v", out.String(), err)
	}
}

func TestReaderFill(t *testing.T) {
	r := newReader(strings.Repeat("x", 100), 0, 8)
	if _, err := r.Fill(32); err != nil || len(r.Buffered()) != 8 {
		t.Fatalf("first fill: %v, %d buffered", err, len(r.Buffered()))
	}
	// Full and nothing consumed: grows up to max, then ErrBufferFull.
	for len(r.Buffered()) < 32 {
		if _, err := r.Fill(32); err != nil {
			t.Fatal(err)
		}
	}
	if len(r.Buffered()) != 32 {
		t.Fatalf("%d buffered", len(r.Buffered()))
	}
	if _, err := r.Fill(32); err != h1.ErrBufferFull {
		t.Errorf("full buffer: %v", err)
	}
	// Consuming makes room again (compaction).
	r.Discard(10)
	if n, err := r.Fill(32); err != nil || n != 10 || len(r.Buffered()) != 32 {
		t.Errorf("after discard: n=%d %v, %d buffered", n, err, len(r.Buffered()))
	}
	// EOF is sticky.
	r.Discard(32)
	for i := 0; i < 100; i++ {
		if _, err := r.Fill(32); err != nil {
			if err != io.EOF {
				t.Fatalf("err %v", err)
			}
			break
		}
		r.Discard(len(r.Buffered()))
	}
	if _, err := r.Fill(32); err != io.EOF {
		t.Errorf("after EOF: %v", err)
	}
}

func BenchmarkChunkedCopier(b *testing.B) {
	var in strings.Builder
	for i := 0; i < 16; i++ {
		in.WriteString("1000\r\n" + strings.Repeat("x", 0x1000) + "\r\n")
	}
	in.WriteString("0\r\n\r\n")
	data := []byte(in.String())
	conn := &byteConn{r: bytes.NewReader(nil)}
	r := &h1.Reader{Conn: conn, Buf: make([]byte, 32<<10)}
	cc := h1.ChunkedCopier{Reencode: true}
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		conn.r.Reset(data)
		r.R, r.W, r.Err = 0, 0, nil
		if _, err := cc.Copy(io.Discard, r); err != nil {
			b.Fatal(err)
		}
	}
}
