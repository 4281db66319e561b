package h1

import "bytes"

// Field-value helpers shared by the request and response parsers.

func parseContentLength(v []byte) (int64, bool) {
	if len(v) == 0 || len(v) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

func lastTokenIsChunked(v []byte) bool {
	var last []byte
	forEachToken(v, func(tok []byte) { last = tok })
	return EqualFold(last, "chunked")
}

// forEachToken calls f for each comma-separated, OWS-trimmed, non-empty element.
func forEachToken(v []byte, f func([]byte)) {
	for len(v) > 0 {
		i := bytes.IndexByte(v, ',')
		var tok []byte
		if i < 0 {
			tok, v = v, nil
		} else {
			tok, v = v[:i], v[i+1:]
		}
		tok = trimOWS(tok)
		if len(tok) > 0 {
			f(tok)
		}
	}
}

// ForEachToken is the exported form of the comma-list iterator.
func ForEachToken(v []byte, f func([]byte)) { forEachToken(v, f) }

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

func lower(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// EqualFold reports whether b equals s ignoring ASCII case, without allocating.
func EqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		if lower(b[i]) != lower(s[i]) {
			return false
		}
	}
	return true
}
