package proxy_test

import (
	"strings"
	"testing"

	"fulcrum/internal/testutil"
)

// requestIDs returns the values of the X-Request-Id fields in a raw head.
func requestIDs(head []byte) []string {
	var out []string
	for _, l := range strings.Split(string(head), "\r\n")[1:] {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.EqualFold(k, "X-Request-Id") {
			out = append(out, strings.TrimSpace(v))
		}
	}
	return out
}

// TestRequestID: fulcrum sends exactly one X-Request-Id to the backend; a
// client's own value survives only from a trusted proxy, and only if it is
// one acceptable value; request_id: false leaves the field alone. The access
// log line carries the same ID.
func TestRequestID(t *testing.T) {
	be := newRawBackend(t, func([]byte) ([]byte, bool) { return okResponse("ok"), false })
	long := strings.Repeat("a", 201)
	for _, tc := range []struct {
		name    string
		extra   map[string]any
		from    string   // client source address
		sent    []string // the client's X-Request-Id fields
		want    string   // what the backend gets: "new" for a generated ID, "" for none
		wantLog string   // request_id in the access log; "new" for the generated one
	}{
		{name: "absent: generated", sent: nil, want: "new", wantLog: "new"},
		{name: "untrusted client: replaced", sent: []string{"client-chosen-1"}, want: "new", wantLog: "new"},
		{name: "peer outside trusted_proxies: replaced", extra: map[string]any{"trusted_proxies": []string{"127.0.0.2/32"}},
			from: "127.0.0.1", sent: []string{"edge-1234"}, want: "new", wantLog: "new"},
		{name: "trusted proxy: kept", extra: map[string]any{"trusted_proxies": []string{"127.0.0.2/32"}},
			from: "127.0.0.2", sent: []string{"f47ac10b-58cc-4372-a567-0e02b2c3d479"},
			want: "f47ac10b-58cc-4372-a567-0e02b2c3d479", wantLog: "f47ac10b-58cc-4372-a567-0e02b2c3d479"},
		{name: "trusted proxy, bad characters: replaced", extra: map[string]any{"trusted_proxies": []string{"127.0.0.0/8"}},
			from: "127.0.0.2", sent: []string{`a"b<script>`}, want: "new", wantLog: "new"},
		{name: "trusted proxy, too long: replaced", extra: map[string]any{"trusted_proxies": []string{"127.0.0.0/8"}},
			from: "127.0.0.2", sent: []string{long}, want: "new", wantLog: "new"},
		{name: "trusted proxy, two fields: replaced", extra: map[string]any{"trusted_proxies": []string{"127.0.0.0/8"}},
			from: "127.0.0.2", sent: []string{"one", "two"}, want: "new", wantLog: "new"},
		{name: "request_id false, absent: none", extra: map[string]any{"request_id": false}, want: "", wantLog: ""},
		{name: "request_id false: passed through as is", extra: map[string]any{"request_id": false},
			sent: []string{"anything goes, even this"}, want: "anything goes, even this", wantLog: "anything goes, even this"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			extra := map[string]any{"access_log": true, "access_log_format": "json"}
			for k, v := range tc.extra {
				extra[k] = v
			}
			var alog testutil.LogBuffer
			tp := startProxyWith(t, proxySetup{Backends: []string{be.Addr()}, Extra: extra, AccessLog: &alog})
			from := tc.from
			if from == "" {
				from = "127.0.0.1"
			}
			c := dialFrom(t, tp.Addr, from)
			raw := "GET /id HTTP/1.1\r\nHost: h\r\n"
			for _, v := range tc.sent {
				raw += "X-Request-Id: " + v + "\r\n"
			}
			before := len(be.Heads())
			if resp, _ := c.do("GET", raw+"\r\n"); resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			heads := be.Heads()
			if len(heads) != before+1 {
				t.Fatalf("backend saw %d requests, want 1", len(heads)-before)
			}
			got := requestIDs(heads[len(heads)-1])
			switch {
			case tc.want == "" && len(got) != 0:
				t.Errorf("backend got X-Request-Id %q, want none", got)
			case tc.want == "new" && (len(got) != 1 || !generatedID.MatchString(got[0]) || contains(tc.sent, got[0])):
				t.Errorf("backend got X-Request-Id %q, want one newly generated", got)
			case tc.want != "" && tc.want != "new" && (len(got) != 1 || got[0] != tc.want):
				t.Errorf("backend got X-Request-Id %q, want [%s]", got, tc.want)
			}
			logged := jsonLine(t, waitAccessLines(t, &alog, 1)[0])["request_id"]
			wantLog := tc.wantLog
			if wantLog == "new" && len(got) == 1 {
				wantLog = got[0]
			}
			if logged != wantLog {
				t.Errorf("access log request_id %q, want %q", logged, wantLog)
			}
		})
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// TestRequestIDUnique: every request gets its own ID, also on one
// keep-alive connection.
func TestRequestIDUnique(t *testing.T) {
	be := newRawBackend(t, func([]byte) ([]byte, bool) { return okResponse("ok"), false })
	tp := startProxy(t, []string{be.Addr()}, nil)
	c := dialProxy(t, tp.Addr)
	const n = 50
	for range n {
		c.get("/")
	}
	seen := map[string]bool{}
	for _, h := range be.Heads() {
		ids := requestIDs(h)
		if len(ids) != 1 || seen[ids[0]] {
			t.Fatalf("X-Request-Id fields %q (seen before: %v)", ids, len(ids) == 1 && seen[ids[0]])
		}
		seen[ids[0]] = true
	}
	if len(seen) != n {
		t.Errorf("%d distinct IDs, want %d", len(seen), n)
	}
}
