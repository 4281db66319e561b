package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestStreamingResponseHoldsBackend is issue 10's reproduction, through the
// built binary: with least_connections and max_connections 1, a response
// still streaming keeps its backend busy in /admin/backends and in
// loadbalancer_backend_connections_active, and new requests go to the other
// backend.
func TestStreamingResponseHoldsBackend(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	finish := func() { once.Do(func() { close(release) }) }
	var bes []*Backend
	for _, name := range []string{"one", "two"} {
		name := name
		bes = append(bes, StartBackend(t, name, 0, func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/stream" {
				io.WriteString(w, "start ")
				w.(http.Flusher).Flush()
				select {
				case <-release:
				case <-time.After(10 * time.Second):
				}
			}
			io.WriteString(w, name)
		}))
	}
	t.Cleanup(finish) // runs before the backends close
	f := StartFulcrum(t, fmt.Sprintf(`{"strategy": "least_connections", "max_connections": 1, "retries": 0,
		"backends": [%q, %q]}`, bes[0].URL, bes[1].URL))

	conn, err := net.DialTimeout("tcp", f.Addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(15 * time.Second))
	io.WriteString(conn, "GET /stream HTTP/1.1\r\nHost: h\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("stream: %v %v", resp, err)
	}
	first := make([]byte, len("start "))
	if _, err := io.ReadFull(resp.Body, first); err != nil {
		t.Fatal(err)
	}

	type row struct {
		URL    string `json:"url"`
		Active int64  `json:"active"`
	}
	var rows []row
	c := &http.Client{Timeout: 5 * time.Second}
	code, body := Get(t, c, f.AdminURL("/admin/backends"))
	if code != 200 || json.Unmarshal([]byte(body), &rows) != nil || len(rows) != 2 {
		t.Fatalf("/admin/backends: %d %s", code, body)
	}
	busy := ""
	for _, r := range rows {
		if r.Active == 1 {
			busy = r.URL
		}
	}
	if rows[0].Active+rows[1].Active != 1 || busy == "" {
		t.Fatalf("active while a response streams: %+v, want one backend at 1", rows)
	}
	_, metrics := Get(t, c, f.AdminURL("/metrics"))
	if !strings.Contains(metrics, "loadbalancer_backend_connections_active{backend=\""+strings.TrimPrefix(busy, "http://")+"\",pool=\"default\"} 1") {
		t.Errorf("connections_active of %s is not 1:\n%s", busy, grepLines(metrics, "connections_active"))
	}
	idle := bes[0]
	if busy == bes[0].URL {
		idle = bes[1]
	}
	for i := 0; i < 3; i++ {
		if code, body := Get(t, c, f.URL("/")); code != 200 || body != idle.Name {
			t.Fatalf("request %d during the stream: %d %q, want %q", i, code, body, idle.Name)
		}
		// Its slot is released just after its last byte is written, which
		// the client may have read first.
		WaitFor(t, 5*time.Second, "the idle backend's slot released", func() bool {
			_, body := Get(t, c, f.AdminURL("/admin/backends"))
			return json.Unmarshal([]byte(body), &rows) == nil && rows[0].Active+rows[1].Active == 1
		})
	}
	finish()
	rest, err := io.ReadAll(resp.Body)
	if err != nil || len(rest) == 0 {
		t.Fatalf("rest of the stream %q: %v", rest, err)
	}
	WaitFor(t, 5*time.Second, "active back to 0", func() bool {
		_, body := Get(t, c, f.AdminURL("/admin/backends"))
		return json.Unmarshal([]byte(body), &rows) == nil && rows[0].Active == 0 && rows[1].Active == 0
	})
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
