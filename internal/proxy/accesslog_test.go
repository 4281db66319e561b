package proxy_test

import (
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"fulcrum/internal/testutil"
)

// waitAccessLines waits until the access log holds n lines and returns them.
// A line is written right after its response, so a client may read the
// response first.
func waitAccessLines(t *testing.T, alog *testutil.LogBuffer, n int) []string {
	t.Helper()
	waitFor(t, 5*time.Second, strconv.Itoa(n)+" access log lines", func() bool {
		return strings.Count(alog.String(), "\n") >= n
	})
	return alog.Lines()
}

func jsonLine(t *testing.T, line string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(line), &m); err != nil {
		t.Fatalf("access log line is not JSON: %v\n%s", err, line)
	}
	return m
}

func textLine(t *testing.T, line string) map[string]string {
	t.Helper()
	m, err := testutil.ParseKV(line)
	if err != nil {
		t.Fatalf("text access log line: %v\n%s", err, line)
	}
	return m
}

// combinedRE is Apache's combined format as standard log parsers read it:
// %h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-Agent}i".
var combinedRE = regexp.MustCompile(`^(\S+) (\S+) (\S+) \[(\d{2}/\w{3}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4})\] "([^"]*)" (\d{3}) (\d+|-) "([^"]*)" "([^"]*)"`)

// combinedLine returns the combined prefix's fields under Apache's names
// and the appended key=value fields.
func combinedLine(t *testing.T, line string) map[string]string {
	t.Helper()
	sub := combinedRE.FindStringSubmatch(line)
	if sub == nil {
		t.Fatalf("not in combined format: %s", line)
	}
	m := map[string]string{"%h": sub[1], "%l": sub[2], "%u": sub[3], "%t": sub[4], "%r": sub[5], "%>s": sub[6],
		"%b": sub[7], "Referer": sub[8], "User-Agent": sub[9]}
	for _, kv := range strings.Fields(line[len(sub[0]):]) {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			t.Fatalf("%q after the combined prefix is no key=value: %s", kv, line)
		}
		m[k] = v
	}
	return m
}

func exchange(t *testing.T, addr, raw string) string {
	t.Helper()
	return testutil.Exchange(t, addr, "", raw)
}

var generatedID = regexp.MustCompile(`^[0-9a-f]{32}$`)

// TestAccessLogFormats drives one request through a real backend per format
// and checks every field of its line.
func TestAccessLogFormats(t *testing.T) {
	const body = "hello, world"
	be := newRawBackend(t, func([]byte) ([]byte, bool) { return okResponse(body), false })
	req := "POST /p/q?x=1 HTTP/1.1\r\nHost: h.example\r\nUser-Agent: probe/1.0\r\nReferer: http://ref.example/a\r\n" +
		"Content-Length: 5\r\nConnection: close\r\n\r\nabcde"
	for _, format := range []string{"json", "text", "combined"} {
		t.Run(format, func(t *testing.T) {
			var alog testutil.LogBuffer
			tp := startProxyWith(t, proxySetup{Backends: []string{be.Addr()}, AccessLog: &alog,
				Extra: map[string]any{"access_log": true, "access_log_format": format}})
			resp := exchange(t, tp.Addr, req)
			if !strings.HasPrefix(resp, "HTTP/1.1 200 ") || !strings.HasSuffix(resp, body) {
				t.Fatalf("response %q", resp)
			}
			lines := waitAccessLines(t, &alog, 1)
			if len(lines) != 1 {
				t.Fatalf("%d lines, want 1:\n%s", len(lines), alog.String())
			}
			heads := be.Heads()
			sentID := headerValue(heads[len(heads)-1], "X-Request-Id")
			if !generatedID.MatchString(sentID) {
				t.Fatalf("backend got X-Request-Id %q, want 32 hex digits", sentID)
			}
			want := map[string]string{
				"request_id": sentID, "client": "127.0.0.1", "method": "POST", "host": "h.example",
				"uri": "/p/q?x=1", "protocol": "HTTP/1.1", "status": "200",
				"bytes_in": strconv.Itoa(len(req)), "bytes_out": strconv.Itoa(len(resp)),
				"listener": "default", "route": "default/0", "pool": "default", "backend": be.Addr(),
				"retries": "0", "tls": "", "sni": "", "referer": "http://ref.example/a", "user_agent": "probe/1.0",
			}
			var got map[string]string
			switch format {
			case "json":
				got = map[string]string{}
				for k, v := range jsonLine(t, lines[0]) {
					switch v := v.(type) {
					case string:
						got[k] = v
					case float64:
						got[k] = strconv.FormatFloat(v, 'f', -1, 64)
					case nil:
						got[k] = "null"
					}
				}
				if len(got) != len(want)+5 { // + time, level, msg, duration_ms, upstream_ms
					t.Errorf("%d keys, want %d: %s", len(got), len(want)+5, lines[0])
				}
			case "text":
				got = textLine(t, lines[0])
			case "combined":
				m := combinedLine(t, lines[0])
				if _, err := time.Parse("02/Jan/2006:15:04:05 -0700", m["%t"]); err != nil {
					t.Errorf("%%t %q: %v", m["%t"], err)
				}
				if m["%l"] != "-" || m["%u"] != "-" {
					t.Errorf("%%l %%u = %q %q, want - -", m["%l"], m["%u"])
				}
				got = map[string]string{
					"request_id": m["rid"], "client": m["%h"], "status": m["%>s"], "host": m["host"],
					"bytes_in": m["in"], "bytes_out": m["out"], "listener": m["listener"], "route": m["route"],
					"pool": m["pool"], "backend": m["backend"], "retries": m["retries"], "referer": m["Referer"],
					"user_agent": m["User-Agent"], "tls": strings.Trim(m["tls"], "-"),
					"duration_ms": m["rt"], "upstream_ms": m["urt"],
				}
				got["method"], got["uri"], got["protocol"] = splitRequestLine(m["%r"])
				if m["%b"] != strconv.Itoa(len(body)) {
					t.Errorf("%%b = %q, want the body's %d bytes", m["%b"], len(body))
				}
			}
			for k, v := range want {
				if got[k] != v {
					t.Errorf("%s = %q, want %q\n%s", k, got[k], v, lines[0])
				}
			}
			for _, k := range []string{"duration_ms", "upstream_ms"} {
				f, err := strconv.ParseFloat(got[k], 64)
				if err != nil || f < 0 || f > 5000 {
					t.Errorf("%s = %q, want a time", k, got[k])
				}
			}
		})
	}
}

func splitRequestLine(r string) (method, uri, proto string) {
	f := strings.Fields(r)
	if len(f) != 3 {
		return r, "", ""
	}
	return f[0], f[1], f[2]
}

// TestAccessLogRetries: a request whose first backend refused the
// connection logs the backend that answered and retries=1.
func TestAccessLogRetries(t *testing.T) {
	be := newRawBackend(t, func([]byte) ([]byte, bool) { return okResponse("ok"), false })
	dead := testutil.ClosedAddr(t)
	var alog testutil.LogBuffer
	tp := startProxyWith(t, proxySetup{Backends: []string{dead, be.Addr()}, AccessLog: &alog,
		Extra: map[string]any{"access_log": true, "access_log_format": "json"}})
	c := dialProxy(t, tp.Addr)
	const n = 4
	for range n {
		if resp, _ := c.get("/r"); resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	retried := 0
	for _, l := range waitAccessLines(t, &alog, n) {
		m := jsonLine(t, l)
		if m["backend"] != be.Addr() || m["status"] != 200.0 {
			t.Errorf("backend %v status %v, want %s 200: %s", m["backend"], m["status"], be.Addr(), l)
		}
		switch m["retries"] {
		case 1.0:
			retried++
		case 0.0:
		default:
			t.Errorf("retries %v: %s", m["retries"], l)
		}
	}
	if total := tp.counter(t, "fulcrum_retries_total", nil); retried == 0 || float64(retried) != total {
		t.Errorf("%d lines with retries=1, fulcrum_retries_total %v; want equal and > 0", retried, total)
	}
}

// TestAccessLogOwnAnswers: requests no backend answered log what is known:
// no route, pool or backend for a refusal before routing; the pool, the
// last backend tried and the retries for a 502.
func TestAccessLogOwnAnswers(t *testing.T) {
	var alog testutil.LogBuffer
	dead1, dead2 := testutil.ClosedAddr(t), testutil.ClosedAddr(t)
	tp := startProxyWith(t, proxySetup{Backends: []string{dead1, dead2}, AccessLog: &alog,
		Extra: map[string]any{"access_log": true, "access_log_format": "json", "max_body_bytes": 10, "retries": 1}})
	exchange(t, tp.Addr, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\nConnection: close\r\n\r\n")
	exchange(t, tp.Addr, "GET /x HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
	lines := waitAccessLines(t, &alog, 2)
	tooLarge, failed := jsonLine(t, lines[0]), jsonLine(t, lines[1])
	if tooLarge["status"] != 413.0 || tooLarge["route"] != "" || tooLarge["pool"] != "" || tooLarge["backend"] != "" ||
		tooLarge["upstream_ms"] != nil || tooLarge["retries"] != 0.0 {
		t.Errorf("413 line: %s", lines[0])
	}
	if b := failed["backend"]; failed["status"] != 502.0 || failed["pool"] != "default" || (b != dead1 && b != dead2) ||
		failed["upstream_ms"] != nil || failed["retries"] != 1.0 || failed["bytes_out"].(float64) <= 0 {
		t.Errorf("502 line: %s", lines[1])
	}
}
