package desync

import (
	"bufio"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestJudgeNaiveProxy points Judge at the RecordingBackend itself: a
// "proxy" that passes everything through. Every Severe and Ambiguous case
// must come out unsafe, which proves the judge can fail a proxy, and every
// renderable Compliant case safe, which proves it can pass one.
func TestJudgeNaiveProxy(t *testing.T) {
	cases := LoadOrSkip(t)
	b := newBackend(t)
	vs := make([]Verdict, 0, len(cases))
	for _, c := range cases {
		vs = append(vs, Judge(b.Addr(), b, c))
	}
	t.Log("\n" + Summary(vs))
	skipped := 0
	for _, v := range vs {
		c := v.Case
		switch {
		case v.Skipped:
			skipped++
		case c.Tier == Severe && (v.Safe || v.Reached == 0):
			t.Errorf("Severe %s %q judged safe or not forwarded: %s", c.File, c.Name, v.Why)
		case c.Tier == Ambiguous && v.Safe:
			t.Errorf("Ambiguous %s %q judged safe: %s", c.File, c.Name, v.Why)
		case c.Tier == Compliant && !v.Safe:
			t.Errorf("Compliant %s %q judged unsafe: %s", c.File, c.Name, v.Why)
		}
	}
	if skipped != 1 {
		t.Errorf("%d cases skipped, want 1 (Empty URI)", skipped)
	}
}

// fakeRecorder reports a fixed set of forwarded requests.
type fakeRecorder struct {
	mu   sync.Mutex
	reqs [][]byte
}

func (f *fakeRecorder) Reset() {}
func (f *fakeRecorder) Requests() [][]byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reqs
}

// scriptedProxy serves each connection on 127.0.0.1 with handle and stops
// everything at test cleanup.
func scriptedProxy(t *testing.T, handle func(c net.Conn, br *bufio.Reader)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				handle(c, bufio.NewReader(c))
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	return ln.Addr().String()
}

// readHead consumes a request head.
func readHead(br *bufio.Reader) {
	for {
		l, err := br.ReadString('\n')
		if err != nil || l == "\r\n" {
			return
		}
	}
}

func TestJudgeScripted(t *testing.T) {
	severe := Case{Tier: Severe, Method: "POST", URI: "/", Version: "HTTP/1.1", Renderable: true,
		Headers: [][2]string{{"Content-Length", "1"}, {"Content-Length", "2"}}}
	bigSevere := severe
	bigSevere.Headers = [][2]string{{"Content-Length", "4000000"}, {"Content-Length", "1"}}
	ambiguous := Case{Tier: Ambiguous, Method: "POST", URI: "/", Version: "HTTP/1.1", Renderable: true,
		Headers: [][2]string{{"Transfer-Encoding", "chunked"}, {"Content-Length", "5"}}}
	compliantTE := Case{Tier: Compliant, Method: "POST", URI: "/", Version: "HTTP/1.1", Renderable: true,
		Headers: [][2]string{{"Transfer-Encoding", "gzip, chunked"}}}
	acceptable := Case{Tier: Acceptable, Method: "GET", URI: "/", Version: "HTTP/1.2", Renderable: true}

	// respond answers and closes the way a careful server does: FIN first,
	// then drain, so that unread request bytes do not turn the close into
	// a reset that could destroy the response before Judge reads it.
	respond := func(resp string) func(net.Conn, *bufio.Reader) {
		return func(c net.Conn, br *bufio.Reader) {
			readHead(br)
			io.WriteString(c, resp)
			c.(*net.TCPConn).CloseWrite()
			io.Copy(io.Discard, br)
		}
	}
	// slam answers and closes at once, request body unread.
	slam := func(resp string) func(net.Conn, *bufio.Reader) {
		return func(c net.Conn, br *bufio.Reader) {
			readHead(br)
			io.WriteString(c, resp)
		}
	}
	keepAlive := func(resp string) func(net.Conn, *bufio.Reader) {
		return func(c net.Conn, br *bufio.Reader) {
			readHead(br)
			io.WriteString(c, resp)
			io.Copy(io.Discard, br) // until the client half-closes
		}
	}
	const bad = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
	const ok = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
	clean := []byte("POST / HTTP/1.1\r\nHost: b\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")

	tests := []struct {
		name      string
		c         Case
		handle    func(net.Conn, *bufio.Reader)
		forwarded [][]byte
		status    int
		closed    bool
		safe      bool
		why       string
	}{
		{"severe refused", severe, respond(bad), nil, 400, true, true, "refused"},
		{"severe refused early, big body", bigSevere, slam(bad), nil, -2, true, true, "refused"},
		{"severe closed silently", severe, func(net.Conn, *bufio.Reader) {}, nil, StatusClosed, true, true, "closed without a response"},
		{"severe garbage then close", severe, respond("garbage\r\n"), nil, StatusClosed, true, true, "not HTTP"},
		{"severe answered 200", severe, keepAlive(ok), nil, 200, true, false, "status 200"},
		{"severe refused but forwarded", severe, respond(bad), [][]byte{clean}, 400, true, false, "1 request(s)"},
		{"ambiguous forwarded cleanly", ambiguous, keepAlive(ok), [][]byte{clean}, 200, true, true, "unambiguous"},
		{"ambiguous forwarded twice", ambiguous, keepAlive(ok), [][]byte{clean, clean}, 200, true, false, "more than one"},
		{"ambiguous forwarded as is", ambiguous, keepAlive(ok),
			[][]byte{[]byte("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n")},
			200, true, false, "both Content-Length and Transfer-Encoding"},
		{"compliant 501 for a coding", compliantTE, respond("HTTP/1.1 501 Not Implemented\r\nContent-Length: 0\r\n\r\n"), nil, 501, true, true, "501"},
		{"compliant 502", compliantTE, respond("HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n"), [][]byte{clean}, 502, true, false, "want one"},
		{"acceptable is recorded", acceptable, respond(bad), nil, 400, true, true, "recorded only"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := scriptedProxy(t, tt.handle)
			v := Judge(addr, &fakeRecorder{reqs: tt.forwarded}, tt.c)
			// -2: either 400 or a reset that lost it, both refusals.
			statusOK := v.Status == tt.status || (tt.status == -2 && (v.Status == 400 || v.Status == StatusClosed))
			if !statusOK || v.Closed != tt.closed || v.Safe != tt.safe || !strings.Contains(v.Why, tt.why) {
				t.Errorf("Judge = status %d closed %v safe %v why %q; want %d %v %v %q",
					v.Status, v.Closed, v.Safe, v.Why, tt.status, tt.closed, tt.safe, tt.why)
			}
			if v.Reached != len(tt.forwarded) {
				t.Errorf("Reached = %d, want %d", v.Reached, len(tt.forwarded))
			}
		})
	}
}

func TestJudgeTimeout(t *testing.T) {
	addr := scriptedProxy(t, func(c net.Conn, br *bufio.Reader) {
		io.Copy(io.Discard, br) // never answers
	})
	c := Case{Tier: Severe, Method: "GET", URI: "/", Version: "HTTP/1.1", Renderable: true}
	start := time.Now()
	v := Judge(addr, &fakeRecorder{}, c)
	if v.Status != StatusTimeout || v.Safe || v.Closed {
		t.Errorf("Judge = %+v, want an unsafe timeout", v)
	}
	if d := time.Since(start); d > ResponseTimeout+time.Second {
		t.Errorf("Judge took %v", d)
	}
}

func TestJudgeUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c := Case{Tier: Severe, Method: "GET", URI: "/", Version: "HTTP/1.1", Renderable: true}
	if v := Judge(addr, &fakeRecorder{}, c); v.Safe || !strings.Contains(v.Why, "cannot reach") {
		t.Errorf("Judge = %+v, want unsafe: cannot reach", v)
	}
	c.Renderable = false
	if v := Judge(addr, &fakeRecorder{}, c); !v.Skipped || !v.Safe {
		t.Errorf("unrenderable: Judge = %+v, want skipped", v)
	}
}

func TestAmbiguity(t *testing.T) {
	tests := []struct{ raw, want string }{
		{"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc", ""},
		{"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", ""},
		{"GET / HTTP/1.0\r\nContent-Length: 0\r\n\r\n", ""},
		{"GET /a?b HTTP/1.1\r\nHost: a\r\n\r\n", ""},
		{"POST / HTTP/1.1\r\nContent-Length: 3\r\n", "incomplete"},
		{"POST / HTTP/1.1\r\nA: b\nc\r\n\r\n", "bare CR or LF"},
		{"POST /\t HTTP/1.1\r\n\r\n", "request line"},
		{"POST / HTTP/0.9\r\n\r\n", "request line"},
		{"POST /\xff HTTP/1.1\r\n\r\n", "request line"},
		{"POST / HTTP/1.1\r\nA: b\r\n c\r\n\r\n", "obs-fold"},
		{"POST / HTTP/1.1\r\nA b: c\r\n\r\n", "malformed field line"},
		{"POST / HTTP/1.1\r\n: c\r\n\r\n", "malformed field line"},
		{"POST / HTTP/1.1\r\nTransfer_Encoding: chunked\r\n\r\n", "normalises to transfer-encoding"},
		{"POST / HTTP/1.1\r\nContent--__Length: 1\r\n\r\n", "normalises to content-length"},
		{"POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "both"},
		{"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\na", "2 Content-Length"},
		{"POST / HTTP/1.1\r\nContent-Length: +1\r\n\r\na", "invalid Content-Length"},
		{"POST / HTTP/1.1\r\nContent-Length: 2\r\n\r\na", "body is 1 bytes"},
		{"GET / HTTP/1.1\r\nContent-Length: 1\r\n\r\na", "on GET"},
		{"HEAD / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "on HEAD"},
		{"POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", "single chunked"},
		{"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "single chunked"},
		{"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "HTTP/1.0"},
		{"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET", "chunked body"},
		{"POST / HTTP/1.1\r\n\r\nabc", "without framing"},
	}
	for _, tt := range tests {
		got := ambiguity([]byte(tt.raw))
		if (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
			t.Errorf("ambiguity(%q) = %q, want %q", tt.raw, got, tt.want)
		}
	}
}

func TestSummary(t *testing.T) {
	vs := []Verdict{
		{Case: Case{File: "s.yaml", Name: "sev ok", Tier: Severe}, Safe: true, Why: "refused"},
		{Case: Case{File: "s.yaml", Name: "sev\r bad", Tier: Severe, Reason: "BadHeader"}, Why: "status 200"},
		{Case: Case{File: "c.yaml", Name: "comp", Tier: Compliant}, Safe: true},
		{Case: Case{File: "c.yaml", Name: "empty", Tier: Compliant}, Safe: true, Skipped: true, Why: "skipped: x"},
		{Case: Case{File: "a.yaml", Name: "acc", Tier: Acceptable}, Safe: true, Why: "recorded only: status 200"},
	}
	got := Summary(vs)
	for _, want := range []string{
		"Severe      1/2",
		"Ambiguous   0/0",
		"Compliant   1/1",
		"(recorded only) 1",
		"unsafe (1):\n  [Severe] s.yaml \"sev\\r bad\" (BadHeader): status 200\n",
		"acceptable, recorded only (1):\n  a.yaml 'acc': recorded only: status 200\n",
		"skipped (1):\n  c.yaml 'empty': skipped: x\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("Summary lacks %q:\n%s", want, got)
		}
	}
}
