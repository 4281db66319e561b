package desync

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// DefaultHost is the Host field value Render adds to cases without one.
const DefaultHost = "localhost"

// maxPadding caps the body Render pads to satisfy a Content-Length. Larger
// lengths are not honoured (no corpus case comes close: its largest is
// 4,000,000).
const maxPadding = 64 << 20

// padByte fills bodies. It is neither CR nor LF, so a proxy that ignores a
// body and reads it as the next request sees an unterminated request line
// and waits, instead of parsing a second request the case did not contain.
const padByte = 'x'

// Render writes c as raw HTTP/1.x bytes:
//
//   - the request line METHOD SP URI SP VERSION CRLF; when Version is ""
//     (HTTP/0.9) it is METHOD SP URI CRLF, the HTTP/0.9 simple-request form,
//     with no trailing space;
//   - each header as Name ": " value CRLF, in order, with exactly the decoded
//     bytes, even when they contain CR, LF or NUL;
//   - "Host: localhost" CRLF when no header is named Host (ASCII
//     case-insensitively). It goes after the case's headers, not first as
//     RFC 9110 section 7.2 suggests, so that the case's first header line
//     still directly follows the request line (" Transfer-Encoding" there is
//     whitespace after the start-line, RFC 9112 section 2.2; after another
//     field it would be an obs-fold continuation instead);
//   - CRLF, then a body that satisfies every reading of the framing headers
//     where possible (see below).
//
// Body. A reading is how some HTTP/1.1 engine, strict or lenient, might
// frame the request. Render considers every header line, also the lines a
// parser would see if it split at a lone CR or LF inside a name or value, and
// takes:
//
//   - as Transfer-Encoding, any line whose name, with everything but letters
//     dropped and Unicode case folding applied, is "transferencoding" (so
//     "Transfer_Encoding", " Transfer-Encoding", "\x01Transfer-Encoding",
//     "Tranſfer-Encoding"); it reads as chunked when its value, folded the
//     same way, contains "chunked" ("xchunked", "chunked\x01", "ChUnKeD");
//   - as Content-Length, any line whose name folds to "contentlength"; every
//     run of decimal digits in its value is a possible length ("1000,1000",
//     "$9000", "1000\x11"); values that overflow int64 are ignored.
//
// With L the largest possible length (0 when there is none):
//
//   - no chunked reading: L bytes of 'x';
//   - a chunked reading: a valid chunked body of exactly L bytes, so a
//     chunked reader and a Content-Length reader consume the same bytes. For
//     L >= 11 it is one data chunk of 'x' plus the last chunk; for 6 <= L <= 10
//     the last chunk with leading zeros ("00\r\n\r\n" is the RFC 9112 last-chunk
//     1*("0") CRLF, then the empty trailer section); for L <= 5 it is
//     "0\r\n\r\n", 5 bytes, which cannot be shortened: a reader using
//     Content-Length 4 leaves one LF, which RFC 9112 section 2.2 lets a server
//     skip as an empty line before the next request line. Chunk sizes are
//     zero-padded only when no unpadded size fits (L = 26 gives "0f").
//
// Taking the largest length means a proxy that reads a smaller one sees the
// rest as the next request (the desync the case tests) instead of every
// reader waiting for bytes that never come.
func Render(c Case) []byte {
	body := renderBody(c.Headers)
	var b bytes.Buffer
	b.Grow(len(c.Method) + len(c.URI) + len(c.Version) + 64*(len(c.Headers)+2) + len(body))
	b.WriteString(c.Method)
	b.WriteByte(' ')
	b.WriteString(c.URI)
	if c.Version != "" {
		b.WriteByte(' ')
		b.WriteString(c.Version)
	}
	b.WriteString("\r\n")
	hasHost := false
	for _, h := range c.Headers {
		b.WriteString(h[0])
		b.WriteString(": ")
		b.WriteString(h[1])
		b.WriteString("\r\n")
		hasHost = hasHost || strings.EqualFold(h[0], "Host")
	}
	if !hasHost {
		b.WriteString("Host: " + DefaultHost + "\r\n")
	}
	b.WriteString("\r\n")
	b.Write(body)
	return b.Bytes()
}

// readings collects the possible framings of a header section (see Render).
func readings(headers [][2]string) (chunked bool, maxLen int64) {
	var block strings.Builder
	for _, h := range headers {
		block.WriteString(h[0])
		block.WriteString(": ")
		block.WriteString(h[1])
		block.WriteByte('\n')
	}
	lines := strings.FieldsFunc(block.String(), func(r rune) bool { return r == '\r' || r == '\n' })
	for _, line := range lines {
		i := strings.IndexByte(line, ':')
		if i < 0 {
			continue
		}
		name, value := foldLetters(line[:i]), line[i+1:]
		switch name {
		case "transferencoding":
			if strings.Contains(foldLetters(value), "chunked") {
				chunked = true
			}
		case "contentlength":
			for _, run := range strings.FieldsFunc(value, func(r rune) bool { return r < '0' || r > '9' }) {
				if n, err := strconv.ParseInt(run, 10, 64); err == nil && n > maxLen {
					maxLen = n
				}
			}
		}
	}
	return chunked, maxLen
}

// foldLetters keeps only letters, lower-cased after upper-casing so that
// characters whose upper case is ASCII ('ſ' to 'S', 'ı' to 'I') fold to
// ASCII the way a Unicode-aware parser would. Invalid UTF-8 is dropped.
func foldLetters(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		r = unicode.ToLower(unicode.ToUpper(r))
		if r >= 'a' && r <= 'z' {
			b.WriteRune(r)
		}
	}
	return b.String()
}

func renderBody(headers [][2]string) []byte {
	chunked, n := readings(headers)
	if n > maxPadding {
		n = 0
	}
	if chunked {
		return chunkedBody(int(n))
	}
	return bytes.Repeat([]byte{padByte}, int(n))
}

// chunkedBody returns a valid chunked body (no trailers) of exactly n bytes,
// or of 5 bytes when n < 5.
func chunkedBody(n int) []byte {
	const last = "\r\n\r\n" // after the last-chunk's zeros
	if n <= 5 {
		return []byte("0" + last)
	}
	if n <= 10 {
		return []byte(strings.Repeat("0", n-4) + last)
	}
	// size digits d, data k: d + CRLF + k + CRLF + "0\r\n\r\n" = n.
	for d := 1; ; d++ {
		k := n - 9 - d
		if k < 1 {
			// Unreachable for n >= 11: d = 1 gives k >= 1.
			panic("desync: no chunk size fits")
		}
		if len(strconv.FormatInt(int64(k), 16)) > d {
			continue
		}
		var b bytes.Buffer
		b.Grow(n)
		fmt.Fprintf(&b, "%0*x\r\n", d, k)
		b.Write(bytes.Repeat([]byte{padByte}, k))
		b.WriteString("\r\n0" + last)
		return b.Bytes()
	}
}
