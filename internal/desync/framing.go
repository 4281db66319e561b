package desync

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
)

// This file holds the small HTTP/1.1 parsing shared by RecordingBackend
// (splitting a byte stream into requests) and Judge (checking what was
// forwarded). It is written independently of fulcrum's own parser on
// purpose: a judge that reused the code under test would agree with it.

var (
	errBadChunk = errors.New("malformed chunked body")
	errTooLarge = errors.New("request too large")
)

// maxChunkLine bounds a chunk-size or trailer line.
const maxChunkLine = 4 << 10

// chunkedLen parses a chunked body at the start of b (RFC 9112 section 7.1).
// It returns the number of bytes the body occupies, including the last chunk
// and trailer section, and complete=false when b ends before the body does.
// Chunk extensions are skipped; lines must end in CRLF.
func chunkedLen(b []byte) (n int, complete bool, err error) {
	pos := 0
	line := func() (string, bool, error) {
		i := bytes.IndexByte(b[pos:], '\n')
		if i < 0 {
			if len(b)-pos > maxChunkLine {
				return "", false, errBadChunk
			}
			return "", false, nil
		}
		if i == 0 || b[pos+i-1] != '\r' || i > maxChunkLine {
			return "", false, errBadChunk
		}
		s := string(b[pos : pos+i-1])
		pos += i + 1
		return s, true, nil
	}
	for {
		s, ok, err := line()
		if !ok || err != nil {
			return 0, false, err
		}
		if j := strings.IndexByte(s, ';'); j >= 0 {
			s = s[:j]
		}
		s = strings.TrimRight(s, " \t")
		if s == "" || len(s) > 15 {
			return 0, false, errBadChunk
		}
		size, perr := strconv.ParseUint(s, 16, 64)
		if perr != nil {
			return 0, false, errBadChunk
		}
		if size == 0 {
			break
		}
		if uint64(len(b)-pos) < size+2 {
			return 0, false, nil
		}
		pos += int(size)
		if b[pos] != '\r' || b[pos+1] != '\n' {
			return 0, false, errBadChunk
		}
		pos += 2
	}
	// Trailer section: field lines until an empty line.
	for {
		s, ok, err := line()
		if !ok || err != nil {
			return 0, false, err
		}
		if s == "" {
			return pos, true, nil
		}
	}
}

// codings splits Transfer-Encoding values into lower-cased coding names,
// without parameters.
func codings(values []string) []string {
	var out []string
	for _, v := range values {
		for _, c := range strings.Split(v, ",") {
			if j := strings.IndexByte(c, ';'); j >= 0 {
				c = c[:j]
			}
			if c = strings.ToLower(strings.Trim(c, " \t")); c != "" {
				out = append(out, c)
			}
		}
	}
	return out
}

// isToken reports whether s is a non-empty RFC 9110 token.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}
