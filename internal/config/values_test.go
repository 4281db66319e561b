package config

import (
	"encoding/json"
	"math"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

func TestParseHashKey(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    HashKey
		wantErr string
	}{
		{in: "header:x-user-id", want: HashKey{Kind: KindHeader, Name: "X-User-Id"}},
		{in: "header:X-USER", want: HashKey{Kind: KindHeader, Name: "X-User"}},
		{in: "cookie:session_id", want: HashKey{Kind: KindCookie, Name: "session_id"}},
		{in: "query:user id", want: HashKey{Kind: KindQuery, Name: "user id"}},
		{in: "query:a:b", want: HashKey{Kind: KindQuery, Name: "a:b"}},
		{in: "path", want: HashKey{Kind: KindPath}},
		{in: "client_ip", want: HashKey{Kind: KindClientIP}},
		{in: "", wantErr: "want \"header:NAME\""},
		{in: "Header:X", wantErr: "invalid key"},
		{in: "header", wantErr: "invalid key"},
		{in: "header:", wantErr: "missing name"},
		{in: "header:a b", wantErr: "not a valid header name"},
		{in: "header:a:b", wantErr: "not a valid header name"},
		{in: "cookie:a;b", wantErr: "not a valid cookie name"},
		{in: "cookie:", wantErr: "missing name"},
		{in: "query:", wantErr: "missing name"},
		{in: "query:a\x00", wantErr: "control character"},
		{in: "path:/x", wantErr: "takes no name"},
		{in: "client_ip:x", wantErr: "takes no name"},
		{in: "ip", wantErr: "invalid key"},
	}
	for _, tt := range tests {
		got, err := ParseHashKey(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseHashKey(%q) = %+v, %v; want error containing %q", tt.in, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseHashKey(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
}

func TestParseStatusRanges(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    []StatusRange
		wantErr string
	}{
		{in: "200-399", want: []StatusRange{{200, 399}}},
		{in: "200,204,300-302", want: []StatusRange{{200, 200}, {204, 204}, {300, 302}}},
		{in: " 200 , 301 - 302 ", want: []StatusRange{{200, 200}, {301, 302}}},
		{in: "100-599", want: []StatusRange{{100, 599}}},
		{in: "200", want: []StatusRange{{200, 200}}},
		{in: "", wantErr: "empty status list"},
		{in: "  ", wantErr: "empty status list"},
		{in: "200,", wantErr: "invalid status code"},
		{in: "099", wantErr: "out of range"},
		{in: "600", wantErr: "out of range"},
		{in: "200-600", wantErr: "out of range"},
		{in: "2000", wantErr: "three-digit"},
		{in: "2xx", wantErr: "invalid status code"},
		{in: "-200", wantErr: "invalid status code"},
		{in: "300-200", wantErr: "300 is greater than 200"},
		{in: "200-300-400", wantErr: "invalid status code"},
		{in: "+20", wantErr: "invalid status code"},
	}
	for _, tt := range tests {
		got, err := ParseStatusRanges(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseStatusRanges(%q) = %v, %v; want error containing %q", tt.in, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseStatusRanges(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestParseSize(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      any
		want    int64
		wantErr string
	}{
		{in: 512, want: 512},
		{in: int64(1 << 40), want: 1 << 40},
		{in: uint8(7), want: 7},
		{in: uint64(math.MaxInt64), want: math.MaxInt64},
		{in: 65536.0, want: 65536},
		{in: json.Number("1024"), want: 1024},
		{in: json.Number("1e3"), want: 1000},
		{in: "512", want: 512},
		{in: "512B", want: 512},
		{in: "64KiB", want: 65536},
		{in: "64kib", want: 65536},
		{in: "1MiB", want: 1 << 20},
		{in: "2GiB", want: 2 << 30},
		{in: "1TiB", want: 1 << 40},
		{in: "10MB", want: 10_000_000},
		{in: "10 mb", want: 10_000_000},
		{in: "1KB", want: 1000},
		{in: "3GB", want: 3_000_000_000},
		{in: "2TB", want: 2_000_000_000_000},
		{in: " 0 ", want: 0},
		{in: "8388607TiB", want: 8388607 << 40},
		{in: -1, wantErr: "negative"},
		{in: "-1", wantErr: "negative"},
		{in: "-1KiB", wantErr: "negative"},
		{in: 1.5, wantErr: "whole number"},
		{in: math.NaN(), wantErr: "whole number"},
		{in: math.Inf(1), wantErr: "whole number"},
		{in: 1e19, wantErr: "whole number"},
		{in: uint64(math.MaxUint64), wantErr: "too large"},
		{in: json.Number("1.5"), wantErr: "whole number"},
		{in: "", wantErr: "invalid size"},
		{in: "KiB", wantErr: "invalid size"},
		{in: "64K", wantErr: "invalid size"},
		{in: "64M", wantErr: "invalid size"},
		{in: "1.5MiB", wantErr: "invalid size"},
		{in: "64 QB", wantErr: "invalid size"},
		{in: "0x10", wantErr: "invalid size"},
		{in: "8388608TiB", wantErr: "too large"},
		{in: "99999999999999999999", wantErr: "too large"},
		{in: true, wantErr: "invalid size of type bool"},
		{in: nil, wantErr: "invalid size of type <nil>"},
	}
	for _, tt := range tests {
		got, err := ParseSize(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseSize(%#v) = %d, %v; want error containing %q", tt.in, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseSize(%#v) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
}

func TestParseBackendURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, scheme, host string
	}{
		{"http://a", "http", "a:80"},
		{"https://a", "https", "a:443"},
		{"HTTP://A.Example:8080/", "http", "a.example:8080"},
		{"http://127.0.0.1:8081", "http", "127.0.0.1:8081"},
		{"http://[::1]", "http", "[::1]:80"},
		{"http://[2001:DB8::1]:8443", "http", "[2001:db8::1]:8443"},
		{"http://my_service.default.svc:80", "http", "my_service.default.svc:80"},
		{"http://a:00080", "http", "a:80"},
	}
	for _, tt := range tests {
		b, err := parseBackendURL(tt.in)
		if err != nil || b.Scheme != tt.scheme || b.Host != tt.host || b.URL != tt.in {
			t.Errorf("parseBackendURL(%q) = %+v, %v; want scheme %q host %q", tt.in, b, err, tt.scheme, tt.host)
		}
	}
}

func TestParseProxy(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"10.1.2.3/8":            "10.0.0.0/8",
		"10.1.2.3":              "10.1.2.3/32",
		"::1":                   "::1/128",
		"2001:db8::1/32":        "2001:db8::/32",
		"::ffff:10.0.0.1":       "10.0.0.1/32",
		"::ffff:172.16.0.0/108": "172.16.0.0/12",
		"::ffff:0:0/80":         "::/80", // shorter than /96: stays IPv6
	} {
		got, err := parseProxy(in)
		if err != nil || got != netip.MustParsePrefix(want) {
			t.Errorf("parseProxy(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "10.0.0.0/", "10.0.0.0/33", "::/129", "host", "fe80::1%eth0", "fe80::1%eth0/64", "10.0.0.0/8/8"} {
		if p, err := parseProxy(in); err == nil {
			t.Errorf("parseProxy(%q) = %v, want error", in, p)
		}
	}
}

func TestCheckListenAddr(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{":8080", "0.0.0.0:80", "[::]:443", "[::1]:0", "localhost:65535", "lb.example.com:8080"} {
		if _, err := checkListenAddr(ok); err != nil {
			t.Errorf("checkListenAddr(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "8080", ":", ":-1", ":65536", ":999999", "a b:80", "::1:80", "[::1]", "host:http"} {
		if _, err := checkListenAddr(bad); err == nil {
			t.Errorf("checkListenAddr(%q) succeeded", bad)
		}
	}
}

func TestIsLoopback(t *testing.T) {
	t.Parallel()
	for host, want := range map[string]bool{
		"127.0.0.1": true, "127.1.2.3": true, "::1": true, "localhost": true, "LocalHost": true,
		"": false, "0.0.0.0": false, "::": false, "10.0.0.1": false, "example.com": false,
	} {
		if got := isLoopback(host); got != want {
			t.Errorf("isLoopback(%q) = %v, want %v", host, got, want)
		}
	}
}

func TestSuggest(t *testing.T) {
	t.Parallel()
	known := []string{"health_check_interval", "health_check", "interval", "timeout", "listen_addr", "ttl"}
	for k, want := range map[string]string{
		"intervall":   "interval",
		"timeuot":     "timeout",
		"listen":      "listen_addr",
		"health":      "health_check",
		"tl":          "ttl",
		"xyz":         "",
		"completely":  "",
		"health_chek": "health_check",
	} {
		if got := suggest(k, known); got != want {
			t.Errorf("suggest(%q) = %q, want %q", k, got, want)
		}
	}
}

func TestEditDistance(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		a, b  string
		limit int
		want  int
	}{
		{"", "", 3, 0},
		{"abc", "abc", 3, 0},
		{"abc", "abd", 3, 1},
		{"abc", "", 5, 3},
		{"kitten", "sitting", 5, 3},
		{"kitten", "sitting", 3, 3},
		{strings.Repeat("a", 1000), "b", 3, 3},
	} {
		if got := editDistance(tt.a, tt.b, tt.limit); got != tt.want {
			t.Errorf("editDistance(%q, %q, %d) = %d, want %d", tt.a, tt.b, tt.limit, got, tt.want)
		}
	}
}
