package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"fulcrum/internal/testutil"
)

// idBackend is a backend that records the X-Request-Id of each request.
type idBackend struct {
	*Backend
	mu  sync.Mutex
	ids [][]string
}

func startIDBackend(t *testing.T, body string) *idBackend {
	b := &idBackend{}
	b.Backend = StartBackend(t, "ids", 0, func(w http.ResponseWriter, r *http.Request) {
		b.mu.Lock()
		b.ids = append(b.ids, r.Header.Values("X-Request-Id"))
		b.mu.Unlock()
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, body)
	})
	return b
}

func (b *idBackend) last(t *testing.T) []string {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.ids) == 0 {
		t.Fatal("the backend saw no request")
	}
	return b.ids[len(b.ids)-1]
}

// accessLines returns the access log lines among fulcrum's output, waiting
// until there are n.
func accessLines(t *testing.T, f *Fulcrum, n int) []string {
	t.Helper()
	var lines []string
	WaitFor(t, 10*time.Second, fmt.Sprintf("%d access log lines", n), func() bool {
		lines = lines[:0]
		for _, l := range strings.Split(f.Logs.String(), "\n") {
			if strings.Contains(l, "msg=access ") || strings.Contains(l, `"msg":"access"`) || strings.Contains(l, " rid=") {
				lines = append(lines, l)
			}
		}
		return len(lines) >= n
	})
	return lines
}

func rawExchange(t *testing.T, addr, local, raw string) string {
	t.Helper()
	return testutil.Exchange(t, addr, local, raw)
}

var (
	hexID    = regexp.MustCompile(`^[0-9a-f]{32}$`)
	apacheRE = regexp.MustCompile(`^(\S+) (\S+) (\S+) \[([^\]]+)\] "([^"]*)" (\d{3}) (\d+|-) "([^"]*)" "([^"]*)"`)
)

func fullFormConfig(listen string, extra string, backends ...*idBackend) string {
	var urls []string
	for _, b := range backends {
		urls = append(urls, strconv.Quote(b.URL))
	}
	return fmt.Sprintf(`{"health_check_interval": "1h", "access_log": true, "retries": 1, %s
 "pools": {"web": {"strategy": "round_robin", "backends": [%s]}},
 "listeners": [{"name": "public", "listen_addr": %q, "routes": [{"name": "site", "pool": "web"}]}]}`,
		extra, strings.Join(urls, ", "), listen)
}

// TestAccessLogFormatsE2E: the binary writes one line per request in each
// format, with the listener, route, pool and backend of the configuration,
// the status, the bytes, and the X-Request-Id the backend got.
func TestAccessLogFormatsE2E(t *testing.T) {
	t.Parallel()
	const body = "served by the backend"
	be := startIDBackend(t, body)
	req := "GET /a/b?c=d HTTP/1.1\r\nHost: site.example\r\nUser-Agent: e2e/1\r\nConnection: close\r\n\r\n"
	for _, format := range []string{"json", "text", "combined"} {
		t.Run(format, func(t *testing.T) {
			t.Parallel()
			listen := fmt.Sprintf("127.0.0.1:%d", freePort(t))
			f := StartFulcrum(t, fullFormConfig(listen, fmt.Sprintf(`"access_log_format": %q,`, format), be))
			testutil.WaitListening(t, listen)
			resp := rawExchange(t, listen, "127.0.0.1", req)
			if !strings.HasPrefix(resp, "HTTP/1.1 200 ") || !strings.HasSuffix(resp, body) {
				t.Fatalf("response %q", resp)
			}
			ids := be.last(t)
			line := accessLines(t, f, 1)[0]
			if len(ids) != 1 || !hexID.MatchString(ids[0]) {
				t.Fatalf("backend got X-Request-Id %q", ids)
			}
			got := map[string]string{}
			switch format {
			case "json":
				var m map[string]any
				if err := json.Unmarshal([]byte(line), &m); err != nil {
					t.Fatalf("%v: %s", err, line)
				}
				for k, v := range m {
					got[k] = fmt.Sprint(v)
				}
			case "text":
				m, err := testutil.ParseKV(line)
				if err != nil {
					t.Fatalf("%v: %s", err, line)
				}
				got = m
			case "combined":
				sub := apacheRE.FindStringSubmatch(line)
				if sub == nil {
					t.Fatalf("not combined: %s", line)
				}
				if sub[5] != "GET /a/b?c=d HTTP/1.1" || sub[7] != strconv.Itoa(len(body)) || sub[9] != "e2e/1" {
					t.Errorf("combined prefix %q", sub[1:])
				}
				got["status"], got["client"] = sub[6], sub[1]
				rename := map[string]string{"rid": "request_id", "in": "bytes_in", "out": "bytes_out"}
				for _, kv := range strings.Fields(line[len(sub[0]):]) {
					k, v, _ := strings.Cut(kv, "=")
					if long, ok := rename[k]; ok {
						k = long
					}
					got[k] = v
				}
			}
			for k, want := range map[string]string{
				"request_id": ids[0], "client": "127.0.0.1", "status": "200", "listener": "public", "route": "site",
				"pool": "web", "backend": be.Addr(), "retries": "0",
				"bytes_in": strconv.Itoa(len(req)), "bytes_out": strconv.Itoa(len(resp)),
			} {
				if got[k] != want {
					t.Errorf("%s = %q, want %q\n%s", k, got[k], want, line)
				}
			}
		})
	}
}

// TestAccessLogRetryE2E: a request that failed over to a second backend
// logs retries=1 and the backend that answered.
func TestAccessLogRetryE2E(t *testing.T) {
	t.Parallel()
	good := startIDBackend(t, "ok")
	dead := startIDBackend(t, "never")
	dead.Close()
	listen := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	f := StartFulcrum(t, fullFormConfig(listen, `"access_log_format": "json",`, dead, good))
	testutil.WaitListening(t, listen)
	for range 2 { // round robin: one of two requests starts on the dead backend
		if resp := rawExchange(t, listen, "127.0.0.1", "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"); !strings.HasPrefix(resp, "HTTP/1.1 200 ") {
			t.Fatalf("response %q", resp)
		}
	}
	retried := false
	for _, l := range accessLines(t, f, 2) {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatal(err)
		}
		if m["backend"] != good.Addr() || m["status"] != 200.0 {
			t.Errorf("line %s: want backend %s, status 200", l, good.Addr())
		}
		retried = retried || m["retries"] == 1.0
	}
	if !retried {
		t.Errorf("no line with retries=1:\n%s", f.Logs.String())
	}
}

// TestRequestIDE2E: X-Request-Id through the binary, from a trusted proxy
// (127.0.0.2) and from an untrusted client (127.0.0.1), and turned off.
func TestRequestIDE2E(t *testing.T) {
	t.Parallel()
	be := startIDBackend(t, "ok")
	listen := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	StartFulcrum(t, fullFormConfig(listen, `"trusted_proxies": ["127.0.0.2/32"],`, be))
	offListen := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	StartFulcrum(t, fullFormConfig(offListen, `"request_id": false,`, be))
	testutil.WaitListening(t, listen)
	testutil.WaitListening(t, offListen)
	send := func(addr, from, id string) []string {
		raw := "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n"
		if id != "" {
			raw += "X-Request-Id: " + id + "\r\n"
		}
		rawExchange(t, addr, from, raw+"\r\n")
		return be.last(t)
	}
	if got := send(listen, "127.0.0.1", ""); len(got) != 1 || !hexID.MatchString(got[0]) {
		t.Errorf("absent: backend got %q, want a generated ID", got)
	}
	if got := send(listen, "127.0.0.1", "spoofed-by-client"); len(got) != 1 || !hexID.MatchString(got[0]) {
		t.Errorf("untrusted client: backend got %q, want a generated ID", got)
	}
	if got := send(listen, "127.0.0.2", "edge-5f3a-77"); len(got) != 1 || got[0] != "edge-5f3a-77" {
		t.Errorf("trusted proxy: backend got %q, want its edge-5f3a-77", got)
	}
	if got := send(listen, "127.0.0.2", "bad id with spaces"); len(got) != 1 || !hexID.MatchString(got[0]) {
		t.Errorf("trusted proxy, bad ID: backend got %q, want a generated ID", got)
	}
	if got := send(offListen, "127.0.0.1", ""); len(got) != 0 {
		t.Errorf("request_id false: backend got %q, want none", got)
	}
	if got := send(offListen, "127.0.0.1", "client-value"); len(got) != 1 || got[0] != "client-value" {
		t.Errorf("request_id false: backend got %q, want the client's value", got)
	}
}

// TestValidateAccessLogFormat: validate refuses a bad access_log_format,
// naming the key, and accepts each valid one.
func TestValidateAccessLogFormat(t *testing.T) {
	t.Parallel()
	bad := coreWriteFile(t, "bad.json", `{"backends": ["http://127.0.0.1:1"], "access_log_format": "apache"}`)
	code, stdout, stderr := coreRun(t, 30*time.Second, "validate", "-config", bad)
	if out := stdout + stderr; code != 1 || !strings.Contains(out, `access_log_format: must be one of "json", "text", "combined"; got "apache"`) {
		t.Errorf("validate bad access_log_format: exit %d, output:\n%s", code, out)
	}
	for _, f := range []string{"json", "text", "combined"} {
		good := coreWriteFile(t, f+".yaml", "backends: [http://127.0.0.1:1]\naccess_log: true\naccess_log_format: "+f+"\nrequest_id: false\n")
		if code, stdout, stderr := coreRun(t, 30*time.Second, "validate", "-config", good); code != 0 {
			t.Errorf("validate access_log_format %s: exit %d\n%s%s", f, code, stdout, stderr)
		}
	}
}

// TestAccessLogFormatReloadE2E: access_log and access_log_format apply on
// reload (SIGHUP).
func TestAccessLogFormatReloadE2E(t *testing.T) {
	t.Parallel()
	be := startIDBackend(t, "ok")
	cfg := func(extra string) string {
		return fmt.Sprintf(`{"health_check_interval": "1h", %s "backends": [%q]}`, extra, be.URL)
	}
	f := StartFulcrum(t, cfg(`"access_log": true, "access_log_format": "json",`))
	get := func() {
		if resp := rawExchange(t, f.Addr, "127.0.0.1", "GET /x HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"); !strings.HasPrefix(resp, "HTTP/1.1 200 ") {
			t.Fatalf("response %q", resp)
		}
	}
	get()
	if l := accessLines(t, f, 1)[0]; !strings.HasPrefix(l, `{"time":`) {
		t.Fatalf("first line is not JSON: %s", l)
	}
	f.WriteConfig(cfg(`"access_log": true, "access_log_format": "combined",`))
	f.Signal(syscall.SIGHUP)
	WaitFor(t, 10*time.Second, "the reload", func() bool {
		get()
		lines := accessLines(t, f, 1)
		return apacheRE.MatchString(lines[len(lines)-1])
	})
	lines := accessLines(t, f, 2)
	if l := lines[len(lines)-1]; !strings.Contains(l, `"GET /x HTTP/1.1" 200 2 "-" "-" rid=`) {
		t.Errorf("combined line after reload: %s", l)
	}
}
