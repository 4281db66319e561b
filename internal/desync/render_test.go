package desync

import (
	"strings"
	"testing"
)

func xs(n int) string { return strings.Repeat("x", n) }

func TestRenderSynthetic(t *testing.T) {
	tests := []struct {
		name string
		c    Case
		want string
	}{
		{"own host, content-length",
			Case{Method: "PUT", URI: "/", Version: "HTTP/1.1", Headers: [][2]string{{"host", "h"}, {"Content-Length", "3"}}},
			"PUT / HTTP/1.1\r\nhost: h\r\nContent-Length: 3\r\n\r\nxxx"},
		{"HTTP/0.9 form",
			Case{Method: "GET", URI: "/a"},
			"GET /a\r\nHost: localhost\r\n\r\n"},
		{"bytes verbatim",
			Case{Method: "GET", URI: "/\x00", Version: "HTTP/1.1", Headers: [][2]string{{"A\r", "b\nc"}}},
			"GET /\x00 HTTP/1.1\r\nA\r: b\nc\r\nHost: localhost\r\n\r\n"},
		{"chunked below 5 bytes of Content-Length",
			Case{Method: "POST", URI: "/", Version: "HTTP/1.1", Headers: [][2]string{{"Content-Length", "4"}, {"Transfer-Encoding", "chunked"}}},
			"POST / HTTP/1.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\nHost: localhost\r\n\r\n0\r\n\r\n"},
		{"non-chunked coding uses Content-Length",
			Case{Method: "POST", URI: "/", Version: "HTTP/1.1", Headers: [][2]string{{"Transfer-Encoding", "gzip"}, {"Content-Length", "2"}}},
			"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\nContent-Length: 2\r\nHost: localhost\r\n\r\nxx"},
	}
	for _, tt := range tests {
		if got := string(Render(tt.c)); got != tt.want {
			t.Errorf("%s: Render =\n%q\nwant\n%q", tt.name, got, tt.want)
		}
	}
}

func TestRenderCorpus(t *testing.T) {
	cases := LoadOrSkip(t)
	tests := []struct {
		file, name, method, want string
	}{
		{"rfc-compliant.yaml", "No headers", "GET",
			"GET /foo/bar HTTP/1.1\r\nHost: localhost\r\n\r\n"},
		// Chunked and Content-Length 100: one 0x59-byte chunk makes the
		// chunked body exactly 100 bytes.
		{"ambiguous.yaml", "Both Transfer-Encoding:chunked and Content-Length", "POST",
			"POST /foo/bar HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 100\r\nHost: localhost\r\n\r\n" +
				"59\r\n" + xs(0x59) + "\r\n0\r\n\r\n"},
		{"acceptable.yaml", "Empty version, which means HTTP/0.9", "GET",
			"GET /foo/bar\r\nX-My-Header: some value\r\nHost: localhost\r\n\r\n"},
		{"severe.yaml", "Bad method", "bad_method\x01",
			"bad_method\x01 /foo/bar HTTP/1.1\r\nHost: localhost\r\n\r\n"},
		{"uri-specific-test-cases.yaml", "Request Smuggling in URI", "GET",
			"GET /endpoint_a\tHTTP/1.1\r\nHost:localhost\r\n\r\nGET\t/endpoint_b\t HTTP/1.1\r\nX-Forwarded-For: 1.1.1.1\r\nHost: localhost\r\n\r\n"},
		// A value that looks chunked to a lenient reader gets a chunked body.
		{"bad-header-characters.yaml", `Transfer-Encoding: \x01chunked`, "POST",
			"POST /foo/bar HTTP/1.1\r\nTransfer-Encoding: \x01chunked\r\nHost: localhost\r\n\r\n0\r\n\r\n"},
		// The injected " Transfer-Encoding: chunked" line counts; the real
		// Content-Length is 100.
		{"severe.yaml", `\n in name is bad`, "POST",
			"POST /foo/bar HTTP/1.1\r\nSome-Bad-Header\n: Content-Length:1000\r\n Transfer-Encoding: chunked\r\nContent-Length: 100\r\nHost: localhost\r\n\r\n" +
				"59\r\n" + xs(0x59) + "\r\n0\r\n\r\n"},
		// The largest of the differing lengths.
		{"severe.yaml", "Multiple Content-Length", "POST",
			"POST /foo/bar HTTP/1.1\r\nContent-Length: 1000\r\nContent-Length: 100\r\nHost: localhost\r\n\r\n" + xs(1000)},
		{"severe.yaml", "Bad Content-Length (64-bits overflow)", "POST",
			"POST /foo/bar HTTP/1.1\r\nContent-Length: 18446744073709551616\r\nHost: localhost\r\n\r\n"},
		{"edge-cases.yaml", "Bad URI does not shadow essential ambiguous headers", "GET",
			"GET /foo/bar\t/baz HTTP/1.1\r\nSome-Custom-Header: Non Rfc -Compliant\x01\r\nContent-Length: 9000\r\nHost: localhost\r\n\r\n" + xs(9000)},
	}
	for _, tt := range tests {
		c := find(t, cases, tt.file, tt.name, tt.method)
		if got := string(c.Raw); got != tt.want {
			t.Errorf("%s %q: Raw =\n%q\nwant\n%q", tt.file, tt.name, got, tt.want)
		}
	}
	// Content-Length 6 with a chunked reading: the last chunk with leading
	// zeros.
	c := find(t, cases, "real-life-test-cases.yaml", "Send small (1614 bytes) request, transfer encoded request", "POST")
	if !strings.HasSuffix(string(c.Raw), "Content-Length:  6\r\nHost: localhost\r\n\r\n00\r\n\r\n") {
		t.Errorf("CL 6 + chunked: Raw ends %q", c.Raw[len(c.Raw)-60:])
	}
}

func TestReadings(t *testing.T) {
	tests := []struct {
		name    string
		headers [][2]string
		chunked bool
		length  int64
	}{
		{"underscore", [][2]string{{"Transfer_Encoding", "chunked"}}, true, 0},
		{"long s", [][2]string{{"Tran\u017ffer-Encoding", "chunked"}}, true, 0},
		{"dotless i", [][2]string{{"Transfer-Encod\u0131ng", "chunked"}}, true, 0},
		{"octet in name", [][2]string{{"Transfer-Encoding\x88", "chunked"}}, true, 0},
		{"mixed case value", [][2]string{{"TrAnSfEr-EnCoDiNg", " ChUnKeD"}}, true, 0},
		{"chunk is not chunked", [][2]string{{"Transfer-Encoding", "chunk"}}, false, 0},
		{"list", [][2]string{{"Content-Length", "1000,1000"}}, false, 1000},
		{"dollar", [][2]string{{"Content-Length", "$9000"}}, false, 9000},
		{"overflow", [][2]string{{"Content-Length", "18446744073709551616"}}, false, 0},
		{"largest", [][2]string{{"Content-Length", "1000"}, {"Content-Length ", "100"}}, false, 1000},
		{"line injected by CR", [][2]string{{"X", "a\rTransfer-Encoding: chunked"}}, true, 0},
		{"line injected by LF", [][2]string{{"X", "a\ncontent-length: 77"}}, false, 77},
		{"no injection without a line break", [][2]string{{"X-test", "Transfer-Encoding: chunked"}}, false, 0},
		{"not a framing name", [][2]string{{"Content-Type", "1234"}}, false, 0},
	}
	for _, tt := range tests {
		chunked, n := readings(tt.headers)
		if chunked != tt.chunked || n != tt.length {
			t.Errorf("%s: readings = %v, %d; want %v, %d", tt.name, chunked, n, tt.chunked, tt.length)
		}
	}
}

func TestChunkedBody(t *testing.T) {
	for n := 0; n <= 5000; n++ {
		b := chunkedBody(n)
		if want := max(n, 5); len(b) != want {
			t.Fatalf("chunkedBody(%d) is %d bytes, want %d", n, len(b), want)
		}
		got, ok, err := chunkedLen(b)
		if err != nil || !ok || got != len(b) {
			t.Fatalf("chunkedBody(%d) = %q: chunkedLen = %d, %v, %v", n, b, got, ok, err)
		}
	}
	if got := string(chunkedBody(26)); got != "0f\r\n"+xs(15)+"\r\n0\r\n\r\n" {
		t.Errorf("chunkedBody(26) = %q", got)
	}
	if got := string(chunkedBody(8)); got != "0000\r\n\r\n" {
		t.Errorf("chunkedBody(8) = %q", got)
	}
}

func TestChunkedLen(t *testing.T) {
	tests := []struct {
		in       string
		n        int
		complete bool
		bad      bool
	}{
		{"0\r\n\r\n", 5, true, false},
		{"5;a=b\r\nhello\r\n0\r\nT: v\r\n\r\nNEXT", 25, true, false},
		{"5\r\nhel", 0, false, false},
		{"0\r\n", 0, false, false},
		{"zz\r\n", 0, false, true},
		{"5\nhello\r\n0\r\n\r\n", 0, false, true},
		{"1\r\nab\r\n", 0, false, true},
		{"\r\n", 0, false, true},
	}
	for _, tt := range tests {
		n, complete, err := chunkedLen([]byte(tt.in))
		if n != tt.n || complete != tt.complete || (err != nil) != tt.bad {
			t.Errorf("chunkedLen(%q) = %d, %v, %v", tt.in, n, complete, err)
		}
	}
}
