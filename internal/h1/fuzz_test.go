package h1_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"fulcrum/internal/h1"
)

// Seeds shared by the fuzz targets; more live in testdata/fuzz.
var requestSeeds = []string{
	"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET / HTTP/1.0\r\n\r\n",
	"POST /x?y=1 HTTP/1.1\r\nHost: a:80\r\nContent-Length: 5\r\n\r\nhello",
	"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
	"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
	"GET http://b/ HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n",
	"OPTIONS * HTTP/1.1\r\nHost: a\r\nTransfer_Encoding: chunked\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n",
	"\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET / HTTP/1.1\nHost: a\n\n",
}

func reqSummary(r *h1.Request) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%q %q 1.%d host=%q cl=%d chunked=%v keep=%v upgrade=%v expect=%v headlen=%d",
		r.Method, r.Target, r.Minor, r.Host, r.ContentLength, r.Chunked, r.KeepAlive, r.Upgrade, r.ExpectContinue, r.HeadLen)
	for _, h := range r.Headers {
		fmt.Fprintf(&b, " %q=%q", h.Name, h.Value)
	}
	return b.String()
}

// normName folds a field name the way lenient servers do ('_' for '-').
func normName(n []byte) string {
	return strings.ReplaceAll(strings.ToLower(string(n)), "_", "-")
}

func FuzzParseRequest(f *testing.F) {
	for _, s := range requestSeeds {
		f.Add([]byte(s))
	}
	const max = 8 << 10
	f.Fuzz(func(t *testing.T, data []byte) {
		r := newReq()
		err := h1.ParseRequest(data, max, r)
		if err == h1.ErrNeedMore {
			if len(data) >= max {
				t.Fatalf("ErrNeedMore with %d bytes and maxHead %d", len(data), max)
			}
			return
		}
		if err != nil {
			var e *h1.Error
			if !errors.As(err, &e) || e.Status < 400 || e.Status > 505 {
				t.Fatalf("error %v is not a refusal", err)
			}
			if again := h1.ParseRequest(data, max, newReq()); again != err {
				t.Fatalf("not deterministic: %v then %v", err, again)
			}
			return
		}
		sum := reqSummary(r)
		if r.Chunked && r.ContentLength >= 0 {
			t.Fatalf("accepted both chunked and Content-Length: %s", sum)
		}
		if r.HeadLen < 4 || r.HeadLen > len(data) || !bytes.HasSuffix(data[:r.HeadLen], []byte("\r\n\r\n")) {
			t.Fatalf("HeadLen %d of %d bytes: %s", r.HeadLen, len(data), sum)
		}
		head := data[:r.HeadLen]
		for i, c := range head {
			switch {
			case c == '\n' && (i == 0 || head[i-1] != '\r'):
				t.Fatalf("accepted a bare LF at %d", i)
			case c == '\r' && (i+1 >= len(head) || head[i+1] != '\n'):
				t.Fatalf("accepted a bare CR at %d", i)
			case c == 0:
				t.Fatalf("accepted a NUL at %d", i)
			}
		}
		if !h1.IsToken(r.Method) || len(r.Target) == 0 || r.Minor < 0 || r.Minor > 1 {
			t.Fatalf("bad request line accepted: %s", sum)
		}
		if r.Minor == 1 && len(r.Host) == 0 {
			t.Fatalf("HTTP/1.1 without Host accepted: %s", sum)
		}
		if (r.IsMethod("GET") || r.IsMethod("HEAD")) && r.HasBody() {
			t.Fatalf("GET/HEAD with a body accepted: %s", sum)
		}
		var cls, tes, hosts int
		for _, h := range r.Headers {
			if !h1.IsToken(h.Name) {
				t.Fatalf("non-token name %q", h.Name)
			}
			for _, c := range h.Value {
				if (c < ' ' && c != '\t') || c == 0x7f {
					t.Fatalf("control character in value %q", h.Value)
				}
			}
			if len(h.Value) > 0 && (h.Value[0] == ' ' || h.Value[0] == '\t' || h.Value[len(h.Value)-1] == ' ' || h.Value[len(h.Value)-1] == '\t') {
				t.Fatalf("value not trimmed: %q", h.Value)
			}
			switch n := normName(h.Name); {
			case n == "content-length":
				if !h1.EqualFold(h.Name, "Content-Length") {
					t.Fatalf("look-alike framing field accepted: %q", h.Name)
				}
				cls++
			case n == "transfer-encoding":
				if !h1.EqualFold(h.Name, "Transfer-Encoding") {
					t.Fatalf("look-alike framing field accepted: %q", h.Name)
				}
				tes++
			case h1.EqualFold(h.Name, "Host"):
				hosts++
			}
		}
		if cls > 1 || tes > 1 || hosts > 1 || (tes == 1) != r.Chunked || (cls == 1) != (r.ContentLength >= 0) {
			t.Fatalf("framing fields CL=%d TE=%d Host=%d: %s", cls, tes, hosts, sum)
		}
		// The same bytes parse the same way; so does the head alone (what
		// follows the head never changes the verdict).
		r2 := newReq()
		if err := h1.ParseRequest(data, max, r2); err != nil || reqSummary(r2) != sum {
			t.Fatalf("re-parse differs: %v\n%s\n%s", err, sum, reqSummary(r2))
		}
		r3 := newReq()
		if err := h1.ParseRequest(bytes.Clone(head), max, r3); err != nil || reqSummary(r3) != sum {
			t.Fatalf("head alone parses differently: %v\n%s\n%s", err, sum, reqSummary(r3))
		}
	})
}

func respSummary(r *h1.Response) string {
	var b strings.Builder
	fmt.Fprintf(&b, "1.%d %d %q cl=%d chunked=%v close=%v headlen=%d", r.Minor, r.Status, r.Reason, r.ContentLength, r.Chunked, r.Close, r.HeadLen)
	for _, h := range r.Headers {
		fmt.Fprintf(&b, " %q=%q", h.Name, h.Value)
	}
	return b.String()
}

func FuzzParseResponse(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
		"HTTP/1.0 204\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\nConnection: close\r\n\r\n",
		"HTTP/1.1 101 Switching Protocols\nUpgrade: websocket\n\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: ,chunked\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	const max = 8 << 10
	f.Fuzz(func(t *testing.T, data []byte) {
		r := h1.Response{Headers: make([]h1.Header, 0, 16)}
		err := h1.ParseResponse(data, max, &r)
		if err != nil {
			if err2 := h1.ParseResponse(data, max, &h1.Response{}); err2 != err {
				t.Fatalf("not deterministic: %v then %v", err, err2)
			}
			return
		}
		sum := respSummary(&r)
		if r.Status < 100 || r.Status > 999 || r.Minor < 0 || r.Minor > 9 {
			t.Fatalf("bad status line accepted: %s", sum)
		}
		if r.HeadLen <= 0 || r.HeadLen > len(data) || r.HeadLen > max {
			t.Fatalf("HeadLen %d of %d: %s", r.HeadLen, len(data), sum)
		}
		if r.Chunked && r.ContentLength != -1 {
			t.Fatalf("chunked with a length: %s", sum)
		}
		// The codings a relay keeps: present exactly when Codings says so,
		// never ending in the chunked the relay adds itself, and never
		// injecting a line break into the head it is written to.
		codings := r.AppendCodings(nil)
		if (len(codings) > 0) != r.Codings {
			t.Fatalf("Codings %v but kept codings %q: %s", r.Codings, codings, sum)
		}
		if bytes.ContainsAny(codings, "\r\n\x00") || (len(codings) > 0 && !bytes.HasSuffix(codings, []byte(", "))) {
			t.Fatalf("kept codings %q: %s", codings, sum)
		}
		for _, h := range r.Headers {
			if !h1.IsToken(h.Name) || bytes.ContainsAny(h.Value, "\r\n\x00") {
				t.Fatalf("bad field accepted: %q: %q", h.Name, h.Value)
			}
		}
		var r2 h1.Response
		if err := h1.ParseResponse(bytes.Clone(data[:r.HeadLen]), max, &r2); err != nil || respSummary(&r2) != sum {
			t.Fatalf("head alone parses differently: %v\n%s\n%s", err, sum, respSummary(&r2))
		}
	})
}

// chunkedRun decodes data with a ChunkedCopier reading step bytes at a time
// and returns the output, the error and every byte left after the body.
func chunkedRun(data []byte, step int, reencode bool) (out string, err error, rest string) {
	conn := &byteConn{r: bytes.NewReader(data), step: step}
	src := &h1.Reader{Conn: conn, Buf: make([]byte, 512)}
	var buf bytes.Buffer
	cc := h1.ChunkedCopier{Reencode: reencode, Limit: 1 << 20, MaxLine: 128}
	_, err = cc.Copy(&buf, src)
	left, _ := io.ReadAll(conn.r)
	return buf.String(), err, string(src.Buffered()) + string(left)
}

func FuzzChunked(f *testing.F) {
	for _, s := range []string{
		"5\r\nhello\r\n0\r\n\r\n",
		"5;ext=1\r\nhello\r\n0\r\nTrailer: x\r\n\r\nNEXT",
		"a\r\n0123456789\r\n0\r\n\r\n",
		"0\r\n\r\n",
		"5\nhello\r\n0\r\n\r\n",
		"fffffffffffffff\r\nx",
		"5 ;a=\"b\"\r\nhello\r\n0\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		out, err, rest := chunkedRun(data, 0, false)
		// ScanChunked, seeing the same bytes, refuses what the copier finds
		// malformed, never what it accepts (it may refuse a cut body whose
		// last byte is already wrong), and never a prefix of a valid body.
		if scan := h1.ScanChunked(data, 128); (errors.Is(err, h1.ErrBadChunk) && scan == nil) || (err == nil && scan != nil) {
			t.Fatalf("copier %v but ScanChunked %v", err, scan)
		}
		if err == nil {
			if scan := h1.ScanChunked(data[:len(data)/2], 128); scan != nil {
				t.Fatalf("ScanChunked refuses a prefix of a valid body: %v", scan)
			}
		}
		// The verdict does not depend on how the bytes arrive.
		out1, err1, rest1 := chunkedRun(data, 1, false)
		if (err == nil) != (err1 == nil) || (err == nil && (out != out1 || rest != rest1)) {
			t.Fatalf("read size changes the result:\nall at once: %q %v rest %q\nbyte by byte: %q %v rest %q", out, err, rest, out1, err1, rest1)
		}
		if err != nil {
			var be *h1.BodyError
			if !errors.As(err, &be) || be.Write {
				t.Fatalf("error %v is not a read BodyError", err)
			}
			return
		}
		// Re-encoding is canonical: it decodes to the same bytes and is a
		// fixed point; nothing after the body is consumed.
		enc, err, _ := chunkedRun(data, 0, true)
		if err != nil {
			t.Fatalf("re-encode failed after decode succeeded: %v", err)
		}
		dec, err, left := chunkedRun([]byte(enc), 0, false)
		if err != nil || dec != out || left != "" {
			t.Fatalf("re-encoded %q decodes to %q (%v), left %q; want %q", enc, dec, err, left, out)
		}
		if enc2, err, _ := chunkedRun([]byte(enc), 3, true); err != nil || enc2 != enc {
			t.Fatalf("re-encoding is not canonical: %q -> %q (%v)", enc, enc2, err)
		}
		if !strings.HasSuffix(string(data), rest) || len(rest) > len(data) {
			t.Fatalf("rest %q is not a suffix of the input", rest)
		}
	})
}
