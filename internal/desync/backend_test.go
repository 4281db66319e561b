package desync

import (
	"bytes"
	"io"
	"net"
	"reflect"
	"testing"
	"time"
)

const okResp = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

func newBackend(t *testing.T) *RecordingBackend {
	t.Helper()
	b, err := NewRecordingBackend()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return b
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	return c
}

func send(t *testing.T, c net.Conn, s string) {
	t.Helper()
	if _, err := io.WriteString(c, s); err != nil {
		t.Fatal(err)
	}
}

// expect reads exactly len(want) bytes from c.
func expect(t *testing.T, c net.Conn, want string) {
	t.Helper()
	got := make([]byte, len(want))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("reading %q: %v (got %q)", want, err, got)
	}
	if string(got) != want {
		t.Fatalf("read %q, want %q", got, want)
	}
}

func requests(b Recorder) []string {
	var out []string
	for _, r := range b.Requests() {
		out = append(out, string(r))
	}
	return out
}

// waitFor polls cond until it holds or 2s pass. The backend records bytes
// on its own goroutine; with no response to wait for, polling is the only
// way to observe that.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	deadline := time.Now().Add(2 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

func TestRecordingBackendPipelined(t *testing.T) {
	b := newBackend(t)
	c := dial(t, b.Addr())
	reqs := []string{
		"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
		"POST /b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5;e=1\r\nhello\r\n0\r\nT: v\r\n\r\n",
		"HEAD /c HTTP/1.1\r\nHost: x\r\n\r\n",
		// Not chunked: Content-Length frames it.
		"PUT /d HTTP/1.1\r\nTransfer-Encoding: gzip\r\ncontent-length: 3\r\n\r\nabc",
		// Bare LF line ends.
		"GET /e HTTP/1.1\nHost: x\n\n",
	}
	var all bytes.Buffer
	all.WriteString("\r\n") // an empty line before a request is skipped
	for _, r := range reqs {
		all.WriteString(r)
	}
	send(t, c, all.String())
	expect(t, c, okResp+okResp+"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n"+okResp+okResp)
	if got := requests(b); !reflect.DeepEqual(got, reqs) {
		t.Errorf("Requests() =\n%q\nwant\n%q", got, reqs)
	}
}

func TestRecordingBackendResetAndPartial(t *testing.T) {
	b := newBackend(t)
	c := dial(t, b.Addr())
	part := "POST /p HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc"
	send(t, c, part)
	waitFor(t, "the partial request", func() bool {
		got := requests(b)
		return len(got) == 1 && got[0] == part
	})
	b.Reset()
	if got := b.Requests(); len(got) != 0 {
		t.Fatalf("after Reset: %q", got)
	}
	// The request that began before Reset completes after it: not recorded.
	send(t, c, "defghij")
	expect(t, c, okResp)
	if got := b.Requests(); len(got) != 0 {
		t.Fatalf("old request recorded after Reset: %q", got)
	}
	next := "GET /n HTTP/1.1\r\n\r\n"
	send(t, c, next)
	expect(t, c, okResp)
	if got := requests(b); !reflect.DeepEqual(got, []string{next}) {
		t.Fatalf("Requests() = %q", got)
	}
}

func TestRecordingBackendClosing(t *testing.T) {
	tests := []struct {
		name, send, resp string
	}{
		{"connection close", "GET / HTTP/1.1\r\nConnection: keep-alive, close\r\n\r\n", okResp},
		{"malformed chunked body", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBackend(t)
			c := dial(t, b.Addr())
			send(t, c, tt.send)
			got, err := io.ReadAll(c)
			if err != nil || string(got) != tt.resp {
				t.Fatalf("read %q, %v; want %q then EOF", got, err, tt.resp)
			}
			if got := requests(b); !reflect.DeepEqual(got, []string{tt.send}) {
				t.Errorf("Requests() = %q", got)
			}
		})
	}
}

func TestRecordingBackendClose(t *testing.T) {
	b, err := NewRecordingBackend()
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, b.Addr())
	send(t, c, "GET /wait HTTP/1.1\r\n")
	waitFor(t, "the partial head", func() bool { return len(b.Requests()) == 1 })
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if n, err := c.Read(make([]byte, 1)); err == nil {
		t.Errorf("connection still open after Close (read %d bytes)", n)
	}
	if err := b.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if c2, err := net.DialTimeout("tcp", b.Addr(), time.Second); err == nil {
		c2.Close()
		t.Error("listener still accepting after Close")
	}
}
