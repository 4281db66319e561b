package route

// Path normalisation as RFC 3986 section 6.2.2 describes it, restricted to
// what routing needs:
//
//   - percent-encoded octets of unreserved characters (ALPHA, DIGIT, "-",
//     ".", "_", "~") are decoded (6.2.2.2), and the hex digits of every other
//     percent-encoding are upper-cased (6.2.2.1); a "%" not followed by two
//     hex digits (invalid in a URI) becomes "%25", so that decoding cannot
//     form a new encoding ("%7%30" would otherwise give "%70", and "p" the
//     next time) and normalising is idempotent;
//   - "." and ".." segments are removed as in section 5.2.4 (6.2.2.3), after
//     decoding, so "/%2e%2e/" is a ".." segment too; ".." at the root stays at
//     the root.
//
// Nothing else changes: "%2F" stays encoded (it is not a segment separator),
// empty segments ("//") are kept, and case is significant.

// NormalPath appends the normalised form of the path p to dst. A p that does
// not start with "/" is treated as if it did. The result always starts with
// "/", holds no "." or ".." segment, and NormalPath of it is itself.
func NormalPath(dst, p []byte) []byte {
	base := len(dst)
	if len(p) == 0 || p[0] != '/' {
		dst = append(dst, '/')
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c == '%' && i+2 < len(p) && ishex(p[i+1]) && ishex(p[i+2]) {
			d := unhex(p[i+1])<<4 | unhex(p[i+2])
			if unreserved(d) {
				dst = append(dst, d)
			} else {
				dst = append(dst, '%', upperHex(p[i+1]), upperHex(p[i+2]))
			}
			i += 2
			continue
		}
		if c == '%' {
			dst = append(dst, "%25"...)
			continue
		}
		dst = append(dst, c)
	}
	return dst[:base+len(removeDots(dst[base:]))]
}

// removeDots removes "." and ".." segments from b (which starts with "/") in
// place and returns the shortened slice. It is idempotent.
func removeDots(b []byte) []byte {
	w := 0
	for r := 0; r < len(b); {
		// b[r] == '/' here: every segment is read with its leading slash.
		s := r + 1
		e := s
		for e < len(b) && b[e] != '/' {
			e++
		}
		last := e == len(b)
		switch seg := b[s:e]; {
		case len(seg) == 1 && seg[0] == '.':
			if last {
				b[w] = '/'
				w++
			}
		case len(seg) == 2 && seg[0] == '.' && seg[1] == '.':
			for w > 0 {
				w--
				if b[w] == '/' {
					break
				}
			}
			if last {
				b[w] = '/'
				w++
			}
		default:
			w += copy(b[w:], b[r:e])
		}
		r = e
	}
	return b[:w]
}

// pathIsNormal reports whether NormalPath(nil, p) would return p unchanged,
// so that Lookup can skip the copy for the common, already normal path.
func pathIsNormal(p []byte) bool {
	if len(p) == 0 || p[0] != '/' {
		return false
	}
	for i := 1; i < len(p); i++ {
		switch p[i] {
		case '%':
			if i+2 < len(p) && ishex(p[i+1]) && ishex(p[i+2]) {
				d := unhex(p[i+1])<<4 | unhex(p[i+2])
				if unreserved(d) || isLowerHex(p[i+1]) || isLowerHex(p[i+2]) {
					return false
				}
			} else {
				return false
			}
		case '.':
			if p[i-1] != '/' {
				continue
			}
			j := i + 1
			if j < len(p) && p[j] == '.' {
				j++
			}
			if j == len(p) || p[j] == '/' {
				return false
			}
		}
	}
	return true
}

func unreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

func ishex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func isLowerHex(c byte) bool { return 'a' <= c && c <= 'f' }

func upperHex(c byte) byte {
	if isLowerHex(c) {
		return c - 'a' + 'A'
	}
	return c
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	default:
		return c - 'a' + 10
	}
}
