package h1_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"fulcrum/internal/h1"
)

func newReq() *h1.Request {
	return &h1.Request{Headers: make([]h1.Header, 0, 16)}
}

func TestParseRequestAccepts(t *testing.T) {
	type want struct {
		method, target, host string
		minor                int
		cl                   int64
		chunked, keep        bool
		upgrade, expect      bool
		headers              int
	}
	cases := []struct {
		name string
		raw  string
		want want
	}{
		{"minimal", "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
			want{method: "GET", target: "/", host: "a", minor: 1, cl: -1, keep: true, headers: 1}},
		{"query and port", "GET /p/q?x=1&y=%20 HTTP/1.1\r\nHost: a.example:8080\r\n\r\n",
			want{method: "GET", target: "/p/q?x=1&y=%20", host: "a.example:8080", minor: 1, cl: -1, keep: true, headers: 1}},
		{"HTTP/1.0 without Host", "GET / HTTP/1.0\r\n\r\n",
			want{method: "GET", target: "/", minor: 0, cl: -1}},
		{"HTTP/1.0 keep-alive", "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n",
			want{method: "GET", target: "/", minor: 0, cl: -1, keep: true, headers: 1}},
		{"HTTP/1.1 close", "GET / HTTP/1.1\r\nHost: a\r\nConnection: foo, close\r\n\r\n",
			want{method: "GET", target: "/", host: "a", minor: 1, cl: -1, headers: 2}},
		{"content length", "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
			want{method: "POST", target: "/x", host: "a", minor: 1, cl: 5, keep: true, headers: 2}},
		{"content length zero on GET", "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
			want{method: "GET", target: "/", host: "a", minor: 1, cl: 0, keep: true, headers: 2}},
		{"content length with OWS", "PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: \t 12 \t\r\n\r\n",
			want{method: "PUT", target: "/", host: "a", minor: 1, cl: 12, keep: true, headers: 2}},
		{"chunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
			want{method: "POST", target: "/", host: "a", minor: 1, cl: -1, chunked: true, keep: true, headers: 2}},
		{"chunked any case", "POST / HTTP/1.1\r\nHost: a\r\ntransfer-encoding: ChUnKeD \r\n\r\n",
			want{method: "POST", target: "/", host: "a", minor: 1, cl: -1, chunked: true, keep: true, headers: 2}},
		{"upgrade", "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n",
			want{method: "GET", target: "/ws", host: "a", minor: 1, cl: -1, keep: true, upgrade: true, headers: 3}},
		{"Connection upgrade without Upgrade", "GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\n\r\n",
			want{method: "GET", target: "/", host: "a", minor: 1, cl: -1, keep: true, headers: 2}},
		{"Upgrade without Connection", "GET / HTTP/1.1\r\nHost: a\r\nUpgrade: h2c\r\n\r\n",
			want{method: "GET", target: "/", host: "a", minor: 1, cl: -1, keep: true, headers: 2}},
		{"expect", "POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n",
			want{method: "POST", target: "/", host: "a", minor: 1, cl: 1, keep: true, expect: true, headers: 3}},
		{"OPTIONS *", "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
			want{method: "OPTIONS", target: "*", host: "a", minor: 1, cl: -1, keep: true, headers: 1}},
		{"absolute form", "GET http://b.example/x HTTP/1.1\r\nHost: a\r\n\r\n",
			want{method: "GET", target: "http://b.example/x", host: "a", minor: 1, cl: -1, keep: true, headers: 1}},
		{"extension method", "PURGE /x HTTP/1.1\r\nHost: a\r\n\r\n",
			want{method: "PURGE", target: "/x", host: "a", minor: 1, cl: -1, keep: true, headers: 1}},
		{"obs-text and tabs in a value", "GET / HTTP/1.1\r\nHost: a\r\nX: caf\xc3\xa9\tb\r\n\r\n",
			want{method: "GET", target: "/", host: "a", minor: 1, cl: -1, keep: true, headers: 2}},
		{"empty value", "GET / HTTP/1.1\r\nHost: a\r\nX:\r\n\r\n",
			want{method: "GET", target: "/", host: "a", minor: 1, cl: -1, keep: true, headers: 2}},
		{"IPv6 host", "GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n",
			want{method: "GET", target: "/", host: "[::1]:80", minor: 1, cl: -1, keep: true, headers: 1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newReq()
			if err := h1.ParseRequest([]byte(tc.raw), 64<<10, r); err != nil {
				t.Fatalf("ParseRequest: %v", err)
			}
			got := want{string(r.Method), string(r.Target), string(r.Host), r.Minor, r.ContentLength,
				r.Chunked, r.KeepAlive, r.Upgrade, r.ExpectContinue, len(r.Headers)}
			if got != tc.want {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
			if head := strings.Index(tc.raw, "\r\n\r\n") + 4; r.HeadLen != head {
				t.Errorf("HeadLen %d, want %d", r.HeadLen, head)
			}
			if r.HasBody() != (tc.want.chunked || tc.want.cl > 0) {
				t.Errorf("HasBody %v", r.HasBody())
			}
		})
	}
}

func TestParseRequestHeaderValues(t *testing.T) {
	r := newReq()
	raw := "GET / HTTP/1.1\r\nHost:  a  \r\nX-A: 1\r\nx-a: \t2\t\r\nCookie: k=v\r\n\r\n"
	if err := h1.ParseRequest([]byte(raw), 1024, r); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, h := range r.Headers {
		got = append(got, fmt.Sprintf("%s=%q", h.Name, h.Value))
	}
	if s := strings.Join(got, " "); s != `Host="a" X-A="1" x-a="2" Cookie="k=v"` {
		t.Errorf("headers %s", s)
	}
	if v := h1.Get(r.Headers, "X-A"); string(v) != "1" {
		t.Errorf("Get = %q", v)
	}
	if v := h1.Get(r.Headers, "Missing"); v != nil {
		t.Errorf("Get(missing) = %q", v)
	}
}

func TestParseRequestRefuses(t *testing.T) {
	const host = "Host: a\r\n"
	cases := []struct {
		name string
		raw  string
		want *h1.Error
	}{
		{"bare LF", "GET / HTTP/1.1\nHost: a\n\n", h1.ErrBareLF},
		{"bare LF in field", "GET / HTTP/1.1\r\nHost: a\nX: 1\r\n\r\n", h1.ErrBareLF},
		{"lone empty line", "\r\n", h1.ErrBadRequestLine},
		{"leading empty line", "\r\nGET / HTTP/1.1\r\n" + host + "\r\n", h1.ErrBadRequestLine},
		{"no spaces", "GET\r\n" + host + "\r\n", h1.ErrBadRequestLine},
		{"HTTP/0.9", "GET /\r\n\r\n", h1.ErrBadRequestLine},
		{"double space", "GET  / HTTP/1.1\r\n" + host + "\r\n", h1.ErrBadRequestLine},
		{"leading space", " GET / HTTP/1.1\r\n" + host + "\r\n", h1.ErrBadRequestLine},
		{"bad method", "G@T / HTTP/1.1\r\n" + host + "\r\n", h1.ErrBadMethod},
		{"long method", strings.Repeat("M", 33) + " / HTTP/1.1\r\n" + host + "\r\n", h1.ErrBadMethod},
		{"target with CR", "GET /\r HTTP/1.1\r\n" + host + "\r\n", h1.ErrBadTarget},
		{"target with DEL", "GET /\x7f HTTP/1.1\r\n" + host + "\r\n", h1.ErrBadTarget},
		{"relative target", "GET x HTTP/1.1\r\n" + host + "\r\n", h1.ErrBadTarget},
		{"star for GET", "GET * HTTP/1.1\r\n" + host + "\r\n", h1.ErrBadTarget},
		{"ftp target", "GET ftp://a/ HTTP/1.1\r\n" + host + "\r\n", h1.ErrBadTarget},
		{"bare scheme", "GET http:// HTTP/1.1\r\n" + host + "\r\n", h1.ErrBadTarget},
		{"CONNECT", "CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", h1.ErrConnectNotAllowed},
		{"lowercase version", "GET / http/1.1\r\n" + host + "\r\n", h1.ErrBadVersion},
		{"short version", "GET / HTTP/1\r\n" + host + "\r\n", h1.ErrBadVersion},
		{"trailing space", "GET / HTTP/1.1 \r\n" + host + "\r\n", h1.ErrBadVersion},
		{"HTTP/1.2", "GET / HTTP/1.2\r\n" + host + "\r\n", h1.ErrVersionNotSupp},
		{"HTTP/2.0", "GET / HTTP/2.0\r\n" + host + "\r\n", h1.ErrVersionNotSupp},
		{"HTTP/0.9 line", "GET / HTTP/0.9\r\n" + host + "\r\n", h1.ErrVersionNotSupp},
		{"obs-fold", "GET / HTTP/1.1\r\n" + host + "X: a\r\n b\r\n\r\n", h1.ErrObsFold},
		{"obs-fold tab", "GET / HTTP/1.1\r\n" + host + "X: a\r\n\tb\r\n\r\n", h1.ErrObsFold},
		{"space before colon", "GET / HTTP/1.1\r\n" + host + "X : a\r\n\r\n", h1.ErrBadHeaderName},
		{"empty name", "GET / HTTP/1.1\r\n" + host + ": a\r\n\r\n", h1.ErrBadHeaderName},
		{"no colon", "GET / HTTP/1.1\r\n" + host + "X\r\n\r\n", h1.ErrBadHeaderName},
		{"non-token name", "GET / HTTP/1.1\r\n" + host + "X(y): a\r\n\r\n", h1.ErrBadHeaderName},
		{"UTF-8 name", "GET / HTTP/1.1\r\n" + host + "Tran\xc5\xbffer-Encoding: chunked\r\n\r\n", h1.ErrBadHeaderName},
		{"NUL", "GET / HTTP/1.1\r\n" + host + "X: a\x00b\r\n\r\n", h1.ErrBadHeaderValue},
		{"bare CR", "GET / HTTP/1.1\r\n" + host + "X: a\rb\r\n\r\n", h1.ErrBadHeaderValue},
		{"CR before CRLF", "GET / HTTP/1.1\r\n" + host + "X: a\r\r\n\r\n", h1.ErrBadHeaderValue},
		{"DEL", "GET / HTTP/1.1\r\n" + host + "X: a\x7f\r\n\r\n", h1.ErrBadHeaderValue},
		{"vertical tab", "GET / HTTP/1.1\r\n" + host + "X: \x0ba\r\n\r\n", h1.ErrBadHeaderValue},
		{"too many fields", "GET / HTTP/1.1\r\n" + host + strings.Repeat("X: 1\r\n", h1.MaxHeaders) + "\r\n", h1.ErrTooManyHeaders},
		{"CL twice equal", "POST / HTTP/1.1\r\n" + host + "Content-Length: 1\r\nContent-Length: 1\r\n\r\n", h1.ErrDupContentLength},
		{"CL twice differing", "POST / HTTP/1.1\r\n" + host + "Content-Length: 1\r\nContent-Length: 2\r\n\r\n", h1.ErrDupContentLength},
		{"CL list", "POST / HTTP/1.1\r\n" + host + "Content-Length: 1, 1\r\n\r\n", h1.ErrBadContentLength},
		{"CL empty", "POST / HTTP/1.1\r\n" + host + "Content-Length: \r\n\r\n", h1.ErrBadContentLength},
		{"CL sign", "POST / HTTP/1.1\r\n" + host + "Content-Length: +1\r\n\r\n", h1.ErrBadContentLength},
		{"CL negative", "POST / HTTP/1.1\r\n" + host + "Content-Length: -1\r\n\r\n", h1.ErrBadContentLength},
		{"CL hex", "POST / HTTP/1.1\r\n" + host + "Content-Length: 0x1\r\n\r\n", h1.ErrBadContentLength},
		{"CL 19 digits", "POST / HTTP/1.1\r\n" + host + "Content-Length: 1000000000000000000\r\n\r\n", h1.ErrBadContentLength},
		{"CL inner space", "POST / HTTP/1.1\r\n" + host + "Content-Length: 1 2\r\n\r\n", h1.ErrBadContentLength},
		{"CL underscore", "POST / HTTP/1.1\r\n" + host + "Content_Length: 1\r\n\r\n", h1.ErrLookalikeFraming},
		{"TE underscore", "POST / HTTP/1.1\r\n" + host + "Transfer_Encoding: chunked\r\n\r\n", h1.ErrLookalikeFraming},
		{"TE doubled dash", "POST / HTTP/1.1\r\n" + host + "Transfer--Encoding: chunked\r\n\r\n", h1.ErrLookalikeFraming},
		{"TE and CL", "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\n", h1.ErrTEAndCL},
		{"CL and TE", "POST / HTTP/1.1\r\n" + host + "Content-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", h1.ErrTEAndCL},
		{"CL and unknown TE", "POST / HTTP/1.1\r\n" + host + "Content-Length: 1\r\nTransfer-Encoding: gzip\r\n\r\n", h1.ErrTEAndCL},
		{"TE in HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", h1.ErrTEHTTP10},
		{"unknown TE in HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: gzip\r\n\r\n", h1.ErrTEHTTP10},
		{"TE twice", "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", h1.ErrBadTE},
		{"TE chunked, chunked", "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked, chunked\r\n\r\n", h1.ErrBadTE},
		{"TE chunked not last", "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked, gzip\r\n\r\n", h1.ErrBadTE},
		{"TE chunked not last over fields", "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n", h1.ErrBadTE},
		{"TE empty", "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: \r\n\r\n", h1.ErrBadTE},
		{"TE only commas", "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: , ,\r\n\r\n", h1.ErrBadTE},
		{"TE quoted", "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: \"chunked\"\r\n\r\n", h1.ErrBadTE},
		{"TE non-token", "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chun ked\r\n\r\n", h1.ErrBadTE},
		{"TE unknown", "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: xchunked\r\n\r\n", h1.ErrTENotImplemented},
		{"TE gzip, chunked", "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: gzip, chunked\r\n\r\n", h1.ErrTENotImplemented},
		{"TE gzip then chunked fields", "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n", h1.ErrTENotImplemented},
		{"TE with parameter", "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked;p=1\r\n\r\n", h1.ErrTENotImplemented},
		{"TE trailing comma", "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked,\r\n\r\n", h1.ErrTENotImplemented},
		{"missing Host", "GET / HTTP/1.1\r\n\r\n", h1.ErrMissingHost},
		{"two Hosts", "GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n", h1.ErrDupHost},
		{"empty Host", "GET / HTTP/1.1\r\nHost: \r\n\r\n", h1.ErrBadHost},
		{"Host with slash", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", h1.ErrBadHost},
		{"Host with at", "GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", h1.ErrBadHost},
		{"Host with space", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", h1.ErrBadHost},
		{"GET with CL", "GET / HTTP/1.1\r\n" + host + "Content-Length: 1\r\n\r\n", h1.ErrBodyOnGet},
		{"HEAD with chunked", "HEAD / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n", h1.ErrBodyOnGet},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := h1.ParseRequest([]byte(tc.raw), 64<<10, newReq())
			if err != tc.want {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
			var e *h1.Error
			if !errors.As(err, &e) || e.Status < 400 {
				t.Errorf("err %v is not an *h1.Error with a 4xx/5xx status", err)
			}
		})
	}
}

func TestParseRequestIncompleteAndLimits(t *testing.T) {
	full := "GET / HTTP/1.1\r\nHost: a\r\nX: " + strings.Repeat("v", 100) + "\r\n\r\n"
	for i := 0; i < len(full); i++ {
		if err := h1.ParseRequest([]byte(full[:i]), 1024, newReq()); err != h1.ErrNeedMore {
			t.Fatalf("prefix %d: %v, want ErrNeedMore", i, err)
		}
	}
	if err := h1.ParseRequest([]byte(full), len(full), newReq()); err != nil {
		t.Errorf("head of exactly maxHead: %v", err)
	}
	if err := h1.ParseRequest([]byte(full), len(full)-1, newReq()); err != h1.ErrHeadTooLarge {
		t.Errorf("head over maxHead: %v", err)
	}
	if err := h1.ParseRequest([]byte(full[:60]), 60, newReq()); err != h1.ErrHeadTooLarge {
		t.Errorf("incomplete head filling maxHead: %v", err)
	}
	// A bare LF is reported as soon as it is seen, before the head is complete.
	if err := h1.ParseRequest([]byte("GET / HTTP/1.1\nHo"), 1024, newReq()); err != h1.ErrBareLF {
		t.Errorf("partial head with bare LF: %v", err)
	}
	// Bytes after the head (a body, a pipelined request) are not looked at.
	r := newReq()
	if err := h1.ParseRequest([]byte("GET / HTTP/1.1\r\nHost: a\r\n\r\nGARBAGE\n\x00"), 1024, r); err != nil || r.HeadLen != 27 {
		t.Errorf("head followed by garbage: %v, HeadLen %d", err, r.HeadLen)
	}
}

func TestParseRequestReuse(t *testing.T) {
	r := newReq()
	if err := h1.ParseRequest([]byte("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nExpect: 100-continue\r\nConnection: upgrade\r\nUpgrade: x\r\n\r\n"), 1024, r); err != nil {
		t.Fatal(err)
	}
	if err := h1.ParseRequest([]byte("GET / HTTP/1.1\r\nHost: b\r\n\r\n"), 1024, r); err != nil {
		t.Fatal(err)
	}
	if r.ContentLength != -1 || r.ExpectContinue || r.Upgrade || r.Chunked || len(r.Headers) != 1 || string(r.Host) != "b" {
		t.Errorf("state leaked from the previous request: %+v", r)
	}
}

func TestParseResponse(t *testing.T) {
	type want struct {
		status, minor int
		reason        string
		cl            int64
		chunked       bool
		close         bool
	}
	cases := []struct {
		name string
		raw  string
		want want
	}{
		{"length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", want{200, 1, "OK", 5, false, false}},
		{"no reason", "HTTP/1.1 204\r\n\r\n", want{204, 1, "", -1, false, false}},
		{"empty reason", "HTTP/1.1 200 \r\n\r\n", want{200, 1, "", -1, false, false}},
		{"long reason", "HTTP/1.1 404 Not  Found here\r\n\r\n", want{404, 1, "Not  Found here", -1, false, false}},
		{"HTTP/1.0 closes", "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n", want{200, 0, "OK", 1, false, true}},
		{"HTTP/1.0 keep-alive", "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\n", want{200, 0, "OK", 1, false, false}},
		{"close", "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n", want{200, 1, "OK", -1, false, true}},
		{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", want{200, 1, "OK", -1, true, false}},
		{"gzip, chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", want{200, 1, "OK", -1, true, false}},
		{"TE not chunked: until close", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", want{200, 1, "OK", -1, false, true}},
		{"TE not chunked ignores CL", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: gzip\r\n\r\n", want{200, 1, "OK", -1, false, true}},
		{"chunked then other coding", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n", want{200, 1, "OK", -1, false, true}},
		{"TE and CL: TE wins, close", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\nTransfer-Encoding: chunked\r\n\r\n", want{200, 1, "OK", -1, true, true}},
		{"CL repeated equal", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n", want{200, 1, "OK", 3, false, false}},
		{"CL list equal", "HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\n\r\n", want{200, 1, "OK", 3, false, false}},
		{"bare LF tolerated", "HTTP/1.1 200 OK\nContent-Length: 0\n\n", want{200, 1, "OK", 0, false, false}},
		{"1xx", "HTTP/1.1 103 Early Hints\r\nLink: </a>; rel=preload\r\n\r\n", want{103, 1, "Early Hints", -1, false, false}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var r h1.Response
			if err := h1.ParseResponse([]byte(tc.raw), 64<<10, &r); err != nil {
				t.Fatal(err)
			}
			got := want{r.Status, r.Minor, string(r.Reason), r.ContentLength, r.Chunked, r.Close}
			if got != tc.want {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestParseResponseRefuses(t *testing.T) {
	cases := []struct {
		name, raw string
		want      error
	}{
		{"HTTP/2", "HTTP/2 200 OK\r\n\r\n", h1.ErrBadStatusLine},
		{"two-digit status", "HTTP/1.1 20 OK\r\n\r\n", h1.ErrBadStatusLine},
		{"status 099", "HTTP/1.1 099 X\r\n\r\n", h1.ErrBadStatusLine},
		{"status with sign", "HTTP/1.1 +20 X\r\n\r\n", h1.ErrBadStatusLine},
		{"no space after status", "HTTP/1.1 200OK\r\n\r\n", h1.ErrBadStatusLine},
		{"lowercase", "http/1.1 200 OK\r\n\r\n", h1.ErrBadStatusLine},
		{"garbage", "hello\r\n\r\n", h1.ErrBadStatusLine},
		{"lone empty line", "\r\n", h1.ErrBadStatusLine},
		{"lone LF", "\n", h1.ErrBadStatusLine},
		{"obs-fold", "HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n", h1.ErrBadRespHeader},
		{"space in name", "HTTP/1.1 200 OK\r\nX Y: a\r\n\r\n", h1.ErrBadRespHeader},
		{"no colon", "HTTP/1.1 200 OK\r\nXY\r\n\r\n", h1.ErrBadRespHeader},
		{"NUL in value", "HTTP/1.1 200 OK\r\nX: a\x00\r\n\r\n", h1.ErrBadRespHeader},
		{"bare CR in value", "HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n", h1.ErrBadRespHeader},
		{"CL differing", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", h1.ErrBadRespLength},
		{"CL list differing", "HTTP/1.1 200 OK\r\nContent-Length: 3, 4\r\n\r\n", h1.ErrBadRespLength},
		{"CL not a number", "HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", h1.ErrBadRespLength},
		{"CL empty", "HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n", h1.ErrBadRespLength},
		{"too many fields", "HTTP/1.1 200 OK\r\n" + strings.Repeat("X: 1\r\n", h1.MaxHeaders+1) + "\r\n", h1.ErrBadRespHeader},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var r h1.Response
			if err := h1.ParseResponse([]byte(tc.raw), 64<<10, &r); err != tc.want {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
		})
	}
	var r h1.Response
	if err := h1.ParseResponse([]byte("HTTP/1.1 200 OK\r\nX: 1\r\n"), 1024, &r); err != h1.ErrNeedMore {
		t.Errorf("incomplete: %v", err)
	}
	if err := h1.ParseResponse([]byte("HTTP/1.1 200 OK\r\nX: 1\r\n"), 10, &r); err != h1.ErrRespTooLarge {
		t.Errorf("incomplete over max: %v", err)
	}
	if err := h1.ParseResponse([]byte("HTTP/1.1 200 OK\r\nX: 1\r\n\r\n"), 20, &r); err != h1.ErrRespTooLarge {
		t.Errorf("complete over max: %v", err)
	}
}

func TestBodylessStatus(t *testing.T) {
	for s, want := range map[int]bool{100: true, 101: true, 199: true, 200: false, 204: true, 205: false, 304: true, 404: false} {
		if h1.BodylessStatus(s) != want {
			t.Errorf("BodylessStatus(%d) = %v", s, !want)
		}
	}
}

func TestTokenHelpers(t *testing.T) {
	for s, want := range map[string]bool{"GET": true, "x-y_z.1~!#$%&'*+^`|": true, "": false, "a b": false, "a:": false, "é": false, "a\x00": false} {
		if h1.IsToken([]byte(s)) != want {
			t.Errorf("IsToken(%q) = %v", s, !want)
		}
	}
	for _, tc := range []struct {
		b, s string
		want bool
	}{{"Content-Length", "content-length", true}, {"ABC", "abd", false}, {"a", "ab", false}, {"[", "{", false}} {
		if h1.EqualFold([]byte(tc.b), tc.s) != tc.want {
			t.Errorf("EqualFold(%q, %q) = %v", tc.b, tc.s, !tc.want)
		}
	}
	var toks []string
	h1.ForEachToken([]byte(" a ,, b\t,c d ,"), func(b []byte) { toks = append(toks, string(b)) })
	if strings.Join(toks, "|") != "a|b|c d" {
		t.Errorf("ForEachToken: %q", toks)
	}
}

var benchReq = []byte("GET /api/v1/items?id=42&sort=desc HTTP/1.1\r\n" +
	"Host: api.example.com\r\n" +
	"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36\r\n" +
	"Accept: application/json, text/plain, */*\r\n" +
	"Accept-Encoding: gzip, deflate, br\r\n" +
	"Accept-Language: en-US,en;q=0.9\r\n" +
	"Cookie: session=abcdef0123456789; theme=dark\r\n" +
	"Connection: keep-alive\r\n" +
	"X-Request-Id: 7f9c1e2a-4b6d-4e8f-9a0b-1c2d3e4f5a6b\r\n\r\n")

func BenchmarkParseRequest(b *testing.B) {
	r := newReq()
	b.ReportAllocs()
	b.SetBytes(int64(len(benchReq)))
	for b.Loop() {
		if err := h1.ParseRequest(benchReq, 64<<10, r); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseResponse(b *testing.B) {
	raw := []byte("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1234\r\nCache-Control: no-cache\r\nDate: Mon, 01 Jan 2026 00:00:00 GMT\r\n\r\n")
	r := h1.Response{Headers: make([]h1.Header, 0, 16)}
	b.ReportAllocs()
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		if err := h1.ParseResponse(raw, 64<<10, &r); err != nil {
			b.Fatal(err)
		}
	}
}

func TestParseRequestDoesNotAllocate(t *testing.T) {
	r := newReq()
	if n := testing.AllocsPerRun(100, func() { h1.ParseRequest(benchReq, 64<<10, r) }); n != 0 {
		t.Errorf("ParseRequest allocates %v times per call", n)
	}
	te := []byte("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n")
	if n := testing.AllocsPerRun(100, func() { h1.ParseRequest(te, 64<<10, r) }); n != 0 {
		t.Errorf("ParseRequest (refusing) allocates %v times per call", n)
	}
}
