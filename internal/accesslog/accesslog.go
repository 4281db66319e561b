// Package accesslog formats fulcrum's access log lines: one line per
// request in JSON, key=value text, or Apache's combined format with
// fulcrum's fields appended. A line is appended to a caller's buffer, so a
// caller that reuses its buffer writes lines without allocating.
package accesslog

import (
	"fmt"
	"net/netip"
	"strconv"
	"time"
)

// Format is an access log line format.
type Format uint8

const (
	// JSON: one object per line with the keys listed on Entry.
	JSON Format = iota
	// Text: key=value pairs in the order of the JSON keys, values quoted
	// (Go syntax) when they hold a space, quote, '=' or a non-printable byte.
	Text
	// Combined: Apache's combined format
	//	%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-Agent}i"
	// followed by " rid=... listener=... route=... pool=... backend=...
	// host=... in=... out=... rt=... urt=... retries=... tls=...", so a
	// standard combined parser reads the prefix and ignores the rest.
	Combined
)

// ParseFormat maps an access_log_format value to its Format.
func ParseFormat(s string) (Format, error) {
	switch s {
	case "json":
		return JSON, nil
	case "text":
		return Text, nil
	case "combined":
		return Combined, nil
	}
	return 0, fmt.Errorf("unknown access log format %q (valid: json, text, combined)", s)
}

// Entry is one request as the access log reports it. Byte slices may alias
// the caller's buffers: Append copies what it needs. The comment of each
// field starts with its JSON and text key.
type Entry struct {
	Time      time.Time     // time: when the request head was received
	RequestID []byte        // request_id: "" when request_id is off and the client sent none
	Client    netip.Addr    // client: the client address (behind trusted_proxies, the forwarded one)
	Method    []byte        // method: as the client sent it
	Host      []byte        // host: the Host field (or an absolute-form target's authority)
	URI       []byte        // uri: the request target as the client sent it
	Protocol  string        // protocol: "HTTP/1.1" or "HTTP/1.0"
	Status    int           // status: what the client got (499: it went away first)
	BytesIn   int64         // bytes_in: request head and body bytes read from the client
	BytesOut  int64         // bytes_out: response bytes written to the client, head included
	BodyOut   int64         // (combined's %b only) response body bytes
	Duration  time.Duration // duration_ms: from receiving the request head to the response's end
	// upstream_ms: from sending the request to the backend that answered
	// until its response head arrived; negative when no backend answered
	// (null in JSON, "-" in text and combined).
	Upstream  time.Duration
	Listener  string // listener: the listener's name
	Route     string // route: the route's metrics label; "" when none matched
	Pool      string // pool: the pool the route chose; "" when none
	Backend   string // backend: host:port of the last backend tried; "" when none
	Retries   int    // retries: attempts on another backend after a failed one
	TLS       string // tls: the TLS version ("TLSv1.3"); "" on plain connections
	SNI       string // sni: the server name the TLS client asked for; "" when none
	Referer   []byte // referer: the Referer field
	UserAgent []byte // user_agent: the User-Agent field
}

// Append appends e's line, ending in a newline, in format f.
func (f Format) Append(dst []byte, e *Entry) []byte {
	switch f {
	case Text:
		return appendText(dst, e)
	case Combined:
		return appendCombined(dst, e)
	}
	return appendJSON(dst, e)
}

// timeLayout is slog's: RFC 3339 with milliseconds, local time.
const timeLayout = "2006-01-02T15:04:05.000Z07:00"

// appendMillis appends d in milliseconds with three decimals (microsecond
// resolution).
func appendMillis(dst []byte, d time.Duration) []byte {
	return appendFixed3(dst, d.Microseconds())
}

// appendSeconds appends d in seconds with three decimals (millisecond
// resolution, like nginx's $request_time).
func appendSeconds(dst []byte, d time.Duration) []byte {
	return appendFixed3(dst, d.Milliseconds())
}

// appendFixed3 appends v/1000 with exactly three decimals.
func appendFixed3(dst []byte, v int64) []byte {
	if v < 0 {
		dst = append(dst, '-')
		v = -v
	}
	dst = strconv.AppendInt(dst, v/1000, 10)
	frac := v % 1000
	return append(dst, '.', byte('0'+frac/100), byte('0'+frac/10%10), byte('0'+frac%10))
}
