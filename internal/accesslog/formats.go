package accesslog

import (
	"strconv"
	"unicode/utf8"
)

// appendJSON writes e as one JSON object. Every key is always present, in a
// fixed order; strings that may come from the client are escaped, with
// invalid UTF-8 replaced by U+FFFD, so the line is always valid JSON.
func appendJSON(dst []byte, e *Entry) []byte {
	dst = append(dst, `{"time":"`...)
	dst = e.Time.AppendFormat(dst, timeLayout)
	dst = append(dst, `","level":"INFO","msg":"access","request_id":`...)
	dst = appendJSONString(dst, e.RequestID)
	dst = append(dst, `,"client":"`...)
	if e.Client.IsValid() {
		dst = e.Client.AppendTo(dst)
	}
	dst = append(dst, `","method":`...)
	dst = appendJSONString(dst, e.Method)
	dst = append(dst, `,"host":`...)
	dst = appendJSONString(dst, e.Host)
	dst = append(dst, `,"uri":`...)
	dst = appendJSONString(dst, e.URI)
	dst = append(dst, `,"protocol":`...)
	dst = appendJSONString(dst, e.Protocol)
	dst = append(dst, `,"status":`...)
	dst = strconv.AppendInt(dst, int64(e.Status), 10)
	dst = append(dst, `,"bytes_in":`...)
	dst = strconv.AppendInt(dst, e.BytesIn, 10)
	dst = append(dst, `,"bytes_out":`...)
	dst = strconv.AppendInt(dst, e.BytesOut, 10)
	dst = append(dst, `,"duration_ms":`...)
	dst = appendMillis(dst, e.Duration)
	dst = append(dst, `,"upstream_ms":`...)
	if e.Upstream < 0 {
		dst = append(dst, "null"...)
	} else {
		dst = appendMillis(dst, e.Upstream)
	}
	dst = append(dst, `,"listener":`...)
	dst = appendJSONString(dst, e.Listener)
	dst = append(dst, `,"route":`...)
	dst = appendJSONString(dst, e.Route)
	dst = append(dst, `,"pool":`...)
	dst = appendJSONString(dst, e.Pool)
	dst = append(dst, `,"backend":`...)
	dst = appendJSONString(dst, e.Backend)
	dst = append(dst, `,"retries":`...)
	dst = strconv.AppendInt(dst, int64(e.Retries), 10)
	dst = append(dst, `,"tls":`...)
	dst = appendJSONString(dst, e.TLS)
	dst = append(dst, `,"sni":`...)
	dst = appendJSONString(dst, e.SNI)
	dst = append(dst, `,"referer":`...)
	dst = appendJSONString(dst, e.Referer)
	dst = append(dst, `,"user_agent":`...)
	dst = appendJSONString(dst, e.UserAgent)
	return append(dst, "}\n"...)
}

func appendJSONString[S []byte | string](dst []byte, s S) []byte {
	dst = append(dst, '"')
	start := 0 // s[start:i] is plain and not yet appended
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < 0x7f {
			i++
			continue
		}
		dst = append(dst, s[start:i]...)
		switch {
		case c >= utf8.RuneSelf:
			var buf [utf8.UTFMax]byte
			r, n := utf8.DecodeRune(buf[:copy(buf[:], s[i:])])
			if r == utf8.RuneError && n == 1 {
				dst = append(dst, `\ufffd`...)
			} else {
				dst = append(dst, s[i:i+n]...)
			}
			i += n
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
			i++
		default: // control bytes and DEL
			dst = append(dst, '\\', 'u', '0', '0', hexDigit(c>>4), hexDigit(c&0xf))
			i++
		}
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

func hexDigit(b byte) byte { return "0123456789abcdef"[b&0xf] }

// appendText writes e as key=value pairs, like slog's text handler: the same
// keys as JSON, values quoted when needed.
func appendText(dst []byte, e *Entry) []byte {
	dst = append(dst, "time="...)
	dst = e.Time.AppendFormat(dst, timeLayout)
	dst = append(dst, " level=INFO msg=access request_id="...)
	dst = appendTextValue(dst, e.RequestID)
	dst = append(dst, " client="...)
	if e.Client.IsValid() {
		dst = e.Client.AppendTo(dst)
	} else {
		dst = append(dst, `""`...)
	}
	dst = append(dst, " method="...)
	dst = appendTextValue(dst, e.Method)
	dst = append(dst, " host="...)
	dst = appendTextValue(dst, e.Host)
	dst = append(dst, " uri="...)
	dst = appendTextValue(dst, e.URI)
	dst = append(dst, " protocol="...)
	dst = appendTextValue(dst, e.Protocol)
	dst = append(dst, " status="...)
	dst = strconv.AppendInt(dst, int64(e.Status), 10)
	dst = append(dst, " bytes_in="...)
	dst = strconv.AppendInt(dst, e.BytesIn, 10)
	dst = append(dst, " bytes_out="...)
	dst = strconv.AppendInt(dst, e.BytesOut, 10)
	dst = append(dst, " duration_ms="...)
	dst = appendMillis(dst, e.Duration)
	dst = append(dst, " upstream_ms="...)
	if e.Upstream < 0 {
		dst = append(dst, '-')
	} else {
		dst = appendMillis(dst, e.Upstream)
	}
	dst = append(dst, " listener="...)
	dst = appendTextValue(dst, e.Listener)
	dst = append(dst, " route="...)
	dst = appendTextValue(dst, e.Route)
	dst = append(dst, " pool="...)
	dst = appendTextValue(dst, e.Pool)
	dst = append(dst, " backend="...)
	dst = appendTextValue(dst, e.Backend)
	dst = append(dst, " retries="...)
	dst = strconv.AppendInt(dst, int64(e.Retries), 10)
	dst = append(dst, " tls="...)
	dst = appendTextValue(dst, e.TLS)
	dst = append(dst, " sni="...)
	dst = appendTextValue(dst, e.SNI)
	dst = append(dst, " referer="...)
	dst = appendTextValue(dst, e.Referer)
	dst = append(dst, " user_agent="...)
	dst = appendTextValue(dst, e.UserAgent)
	return append(dst, '\n')
}

// appendTextValue appends s bare, or quoted in Go syntax when it is empty or
// holds a space, '"', '=', or anything but printable ASCII.
func appendTextValue[S []byte | string](dst []byte, s S) []byte {
	quote := len(s) == 0
	for i := 0; i < len(s) && !quote; i++ {
		c := s[i]
		quote = c <= ' ' || c >= 0x7f || c == '"' || c == '='
	}
	if !quote {
		return append(dst, s...)
	}
	return strconv.AppendQuote(dst, string(s))
}

// appendCombined writes Apache's combined format, then fulcrum's fields.
func appendCombined(dst []byte, e *Entry) []byte {
	if e.Client.IsValid() {
		dst = e.Client.AppendTo(dst)
	} else {
		dst = append(dst, '-')
	}
	dst = append(dst, " - - ["...)
	dst = e.Time.AppendFormat(dst, "02/Jan/2006:15:04:05 -0700")
	dst = append(dst, "] \""...)
	dst = appendApache(dst, e.Method, false)
	dst = append(dst, ' ')
	dst = appendApache(dst, e.URI, false)
	dst = append(dst, ' ')
	dst = appendApache(dst, e.Protocol, false)
	dst = append(dst, "\" "...)
	dst = strconv.AppendInt(dst, int64(e.Status), 10)
	dst = append(dst, ' ')
	if e.BodyOut > 0 {
		dst = strconv.AppendInt(dst, e.BodyOut, 10)
	} else {
		dst = append(dst, '-') // CLF: "-" rather than 0
	}
	dst = append(dst, " \""...)
	dst = appendApacheOrDash(dst, e.Referer)
	dst = append(dst, "\" \""...)
	dst = appendApacheOrDash(dst, e.UserAgent)
	dst = append(dst, "\" rid="...)
	dst = appendFieldOrDash(dst, e.RequestID)
	dst = append(dst, " listener="...)
	dst = appendFieldOrDash(dst, e.Listener)
	dst = append(dst, " route="...)
	dst = appendFieldOrDash(dst, e.Route)
	dst = append(dst, " pool="...)
	dst = appendFieldOrDash(dst, e.Pool)
	dst = append(dst, " backend="...)
	dst = appendFieldOrDash(dst, e.Backend)
	dst = append(dst, " host="...)
	dst = appendFieldOrDash(dst, e.Host)
	dst = append(dst, " in="...)
	dst = strconv.AppendInt(dst, e.BytesIn, 10)
	dst = append(dst, " out="...)
	dst = strconv.AppendInt(dst, e.BytesOut, 10)
	dst = append(dst, " rt="...)
	dst = appendSeconds(dst, e.Duration)
	dst = append(dst, " urt="...)
	if e.Upstream < 0 {
		dst = append(dst, '-')
	} else {
		dst = appendSeconds(dst, e.Upstream)
	}
	dst = append(dst, " retries="...)
	dst = strconv.AppendInt(dst, int64(e.Retries), 10)
	dst = append(dst, " tls="...)
	dst = appendFieldOrDash(dst, e.TLS)
	return append(dst, '\n')
}

func appendApacheOrDash[S []byte | string](dst []byte, s S) []byte {
	if len(s) == 0 {
		return append(dst, '-')
	}
	return appendApache(dst, s, false)
}

// appendFieldOrDash is appendApacheOrDash for the appended key=value
// fields, where a space is escaped too (\x20), so a value never splits a
// field.
func appendFieldOrDash[S []byte | string](dst []byte, s S) []byte {
	if len(s) == 0 {
		return append(dst, '-')
	}
	return appendApache(dst, s, true)
}

// appendApache escapes like Apache's ap_escape_logitem: '"' and '\' get a
// backslash, and control bytes, DEL and bytes above 0x7f become \xhh (and
// a space too with field).
func appendApache[S []byte | string](dst []byte, s S, field bool) []byte {
	start := 0 // s[start:i] needs no escape and is not yet appended
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c > ' ' && c < 0x7f && c != '"' && c != '\\' || c == ' ' && !field {
			continue
		}
		dst = append(dst, s[start:i]...)
		if c == '"' || c == '\\' {
			dst = append(dst, '\\', c)
		} else {
			dst = append(dst, '\\', 'x', hexDigit(c>>4), hexDigit(c&0xf))
		}
		start = i + 1
	}
	return append(dst, s[start:]...)
}
