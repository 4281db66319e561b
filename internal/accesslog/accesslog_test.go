package accesslog

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"fulcrum/internal/testutil"
)

func sample() Entry {
	return Entry{
		Time:      time.Date(2026, 3, 4, 5, 6, 7, 890_000_000, time.FixedZone("", 3600)),
		RequestID: []byte("0123456789abcdef0123456789abcdef"),
		Client:    netip.MustParseAddr("203.0.113.9"),
		Method:    []byte("GET"),
		Host:      []byte("api.example.com"),
		URI:       []byte("/v1/users?id=7"),
		Protocol:  "HTTP/1.1",
		Status:    200,
		BytesIn:   120,
		BytesOut:  345,
		BodyOut:   300,
		Duration:  12345 * time.Microsecond,
		Upstream:  9876 * time.Microsecond,
		Listener:  "public",
		Route:     "api-v1",
		Pool:      "api",
		Backend:   "10.0.0.1:8080",
		Retries:   1,
		Referer:   []byte("https://example.com/"),
		UserAgent: []byte("curl/8.5.0"),
	}
}

// CombinedRE is Apache's combined format, as log tools parse it:
// %h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-Agent}i". Escaped quotes
// (\") may appear inside the quoted parts.
var combinedRE = regexp.MustCompile(`^(\S+) (\S+) (\S+) \[([^\]]+)\] "((?:[^"\\]|\\.)*)" (\d{3}) (\d+|-) "((?:[^"\\]|\\.)*)" "((?:[^"\\]|\\.)*)"`)

func TestJSON(t *testing.T) {
	e := sample()
	line := JSON.Append(nil, &e)
	if !bytes.HasSuffix(line, []byte("}\n")) || bytes.Count(line, []byte("\n")) != 1 {
		t.Fatalf("not one line: %q", line)
	}
	var m map[string]any
	if err := json.Unmarshal(line, &m); err != nil {
		t.Fatalf("invalid JSON %s: %v", line, err)
	}
	want := map[string]any{
		"time": "2026-03-04T05:06:07.890+01:00", "level": "INFO", "msg": "access",
		"request_id": "0123456789abcdef0123456789abcdef", "client": "203.0.113.9", "method": "GET",
		"host": "api.example.com", "uri": "/v1/users?id=7", "protocol": "HTTP/1.1", "status": 200.0,
		"bytes_in": 120.0, "bytes_out": 345.0, "duration_ms": 12.345, "upstream_ms": 9.876,
		"listener": "public", "route": "api-v1", "pool": "api", "backend": "10.0.0.1:8080",
		"retries": 1.0, "tls": "", "sni": "", "referer": "https://example.com/", "user_agent": "curl/8.5.0",
	}
	if len(m) != len(want) {
		t.Errorf("keys: got %d, want %d: %s", len(m), len(want), line)
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %#v, want %#v", k, m[k], v)
		}
	}
	e.Upstream = -1
	e.Client = netip.Addr{}
	line = JSON.Append(nil, &e)
	m = nil
	if err := json.Unmarshal(line, &m); err != nil {
		t.Fatal(err)
	}
	if v, ok := m["upstream_ms"]; !ok || v != nil {
		t.Errorf("upstream_ms without a backend = %#v, want null", v)
	}
}

func TestJSONEscapes(t *testing.T) {
	e := sample()
	e.UserAgent = []byte("a\"b\\c\x01d\xffe\u00e9\x7f")
	e.URI = []byte("/\"}\n")
	var m map[string]any
	line := JSON.Append(nil, &e)
	if err := json.Unmarshal(line, &m); err != nil {
		t.Fatalf("invalid JSON %q: %v", line, err)
	}
	if got, want := m["user_agent"], "a\"b\\c\x01d\ufffde\u00e9\x7f"; got != want {
		t.Errorf("user_agent %q, want %q", got, want)
	}
	if m["uri"] != "/\"}\n" || bytes.Count(line, []byte("\n")) != 1 {
		t.Errorf("uri %q in %q", m["uri"], line)
	}
}

func parseText(t *testing.T, line string) map[string]string {
	t.Helper()
	m, err := testutil.ParseKV(line)
	if err != nil {
		t.Fatalf("%v\n%s", err, line)
	}
	return m
}

func TestText(t *testing.T) {
	e := sample()
	e.UserAgent = []byte("Mozilla/5.0 (X11; \"quoted\")")
	e.Pool = ""
	line := string(Text.Append(nil, &e))
	m := parseText(t, line)
	want := map[string]string{
		"time": "2026-03-04T05:06:07.890+01:00", "level": "INFO", "msg": "access",
		"request_id": "0123456789abcdef0123456789abcdef", "client": "203.0.113.9", "method": "GET",
		"host": "api.example.com", "uri": "/v1/users?id=7", "protocol": "HTTP/1.1", "status": "200",
		"bytes_in": "120", "bytes_out": "345", "duration_ms": "12.345", "upstream_ms": "9.876",
		"listener": "public", "route": "api-v1", "pool": "", "backend": "10.0.0.1:8080",
		"retries": "1", "tls": "", "sni": "", "referer": "https://example.com/", "user_agent": "Mozilla/5.0 (X11; \"quoted\")",
	}
	if len(m) != len(want) {
		t.Errorf("keys: got %d, want %d: %s", len(m), len(want), line)
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %q, want %q", k, m[k], v)
		}
	}
	if !strings.Contains(line, ` pool="" `) {
		t.Errorf("an empty value is not written as \"\": %s", line)
	}
}

func TestCombined(t *testing.T) {
	e := sample()
	e.UserAgent = []byte(`evil" "x`)
	line := string(Combined.Append(nil, &e))
	m := combinedRE.FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("combined regexp does not match %q", line)
	}
	for i, want := range []string{"", "203.0.113.9", "-", "-", "04/Mar/2026:05:06:07 +0100",
		"GET /v1/users?id=7 HTTP/1.1", "200", "300", "https://example.com/", `evil\" \"x`} {
		if i > 0 && m[i] != want {
			t.Errorf("combined field %d = %q, want %q", i, m[i], want)
		}
	}
	rest := strings.TrimSuffix(line[len(m[0]):], "\n")
	if want := " rid=0123456789abcdef0123456789abcdef listener=public route=api-v1 pool=api backend=10.0.0.1:8080" +
		" host=api.example.com in=120 out=345 rt=0.012 urt=0.009 retries=1 tls=-"; rest != want {
		t.Errorf("appended fields\n got %q\nwant %q", rest, want)
	}

	e = sample()
	e.BodyOut, e.Upstream, e.Backend, e.Referer, e.RequestID = 0, -1, "", nil, []byte("a b")
	line = string(Combined.Append(nil, &e))
	m = combinedRE.FindStringSubmatch(line)
	if m == nil || m[7] != "-" || m[8] != "-" {
		t.Fatalf("empty body and referer: %q", line)
	}
	if !strings.Contains(line, " rid=a\\x20b ") || !strings.Contains(line, " backend=- ") || !strings.Contains(line, " urt=- ") {
		t.Errorf("empty or spaced fields: %q", line)
	}
}

func TestAppendDoesNotAllocate(t *testing.T) {
	e := sample()
	buf := make([]byte, 0, 1024)
	for _, f := range []Format{JSON, Text, Combined} {
		if n := testing.AllocsPerRun(200, func() { buf = f.Append(buf[:0], &e) }); n != 0 {
			t.Errorf("format %d: %.1f allocations per line", f, n)
		}
	}
}

func TestParseFormat(t *testing.T) {
	for s, want := range map[string]Format{"json": JSON, "text": Text, "combined": Combined} {
		if f, err := ParseFormat(s); err != nil || f != want {
			t.Errorf("ParseFormat(%q) = %v, %v", s, f, err)
		}
	}
	if _, err := ParseFormat("common"); err == nil || !strings.Contains(err.Error(), `"common"`) {
		t.Errorf("ParseFormat(common): %v", err)
	}
}

// FuzzAppend: whatever the client-supplied fields hold, each format gives
// exactly one line; JSON stays valid and round-trips the (valid UTF-8)
// user agent, text parses back, and combined matches the standard format.
func FuzzAppend(f *testing.F) {
	f.Add([]byte("/"), []byte("curl"), []byte("ref"))
	f.Add([]byte("/\"\n"), []byte("a\\\"b\x00\xff"), []byte(" "))
	f.Fuzz(func(t *testing.T, uri, ua, ref []byte) {
		e := sample()
		e.URI, e.UserAgent, e.Referer, e.RequestID = uri, ua, ref, ua
		for _, fm := range []Format{JSON, Text, Combined} {
			line := fm.Append(nil, &e)
			if bytes.IndexByte(line, '\n') != len(line)-1 {
				t.Fatalf("format %d: not one line: %q", fm, line)
			}
		}
		var m map[string]any
		if err := json.Unmarshal(JSON.Append(nil, &e), &m); err != nil {
			t.Fatalf("invalid JSON for %q: %v", ua, err)
		}
		if got := m["user_agent"].(string); got != replaceInvalid(ua) {
			t.Fatalf("user_agent %q round-trips as %q", ua, got)
		}
		if tm := parseText(t, string(Text.Append(nil, &e))); tm["user_agent"] != string(ua) || tm["uri"] != string(uri) {
			t.Fatalf("text round trip: uri %q ua %q, got %q %q", uri, ua, tm["uri"], tm["user_agent"])
		}
		if !combinedRE.Match(Combined.Append(nil, &e)) {
			t.Fatalf("combined does not match for uri %q ua %q ref %q", uri, ua, ref)
		}
	})
}

// replaceInvalid replaces each byte of s that is not part of valid UTF-8
// with U+FFFD, as appendJSONString does.
func replaceInvalid(s []byte) string {
	var b strings.Builder
	for len(s) > 0 {
		r, n := utf8.DecodeRune(s)
		if r == utf8.RuneError && n == 1 {
			b.WriteRune(utf8.RuneError)
		} else {
			b.Write(s[:n])
		}
		s = s[n:]
	}
	return b.String()
}

func BenchmarkAppend(b *testing.B) {
	e := sample()
	buf := make([]byte, 0, 1024)
	for _, fm := range []struct {
		name string
		f    Format
	}{{"json", JSON}, {"text", Text}, {"combined", Combined}} {
		b.Run(fm.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				buf = fm.f.Append(buf[:0], &e)
			}
		})
	}
}
