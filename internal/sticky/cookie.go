package sticky

// MaxAppCookieLen bounds the application cookie values a Table is asked to
// store; longer values are not remembered (their requests follow the
// strategy).
const MaxAppCookieLen = 256

// AppendCookie appends the value of fulcrum's own sticky cookie naming the
// backend with sticky ID id: 16 lowercase hex digits.
func AppendCookie(dst []byte, id uint64) []byte {
	const hexd = "0123456789abcdef"
	for i := 15; i >= 0; i-- {
		dst = append(dst, hexd[(id>>(uint(i)*4))&0xf])
	}
	return dst
}

// DecodeCookie parses the value of fulcrum's own sticky cookie. Only the
// form AppendCookie writes is accepted: 16 lowercase hex digits.
func DecodeCookie(v []byte) (uint64, bool) {
	if len(v) != 16 {
		return 0, false
	}
	var n uint64
	for _, c := range v {
		switch {
		case c >= '0' && c <= '9':
			n = n<<4 | uint64(c-'0')
		case c >= 'a' && c <= 'f':
			n = n<<4 | uint64(c-'a'+10)
		default:
			return 0, false
		}
	}
	return n, true
}

// SetCookieValue returns the cookie value in a Set-Cookie field value if the
// cookie is named name (case-sensitive), or nil. Blanks around the value are
// removed, as a browser does (RFC 6265 section 5.2), then one pair of double
// quotes; attributes after ';' are ignored.
func SetCookieValue(v []byte, name string) []byte {
	for len(v) > 0 && (v[0] == ' ' || v[0] == '\t') {
		v = v[1:]
	}
	if len(v) <= len(name) || v[len(name)] != '=' || string(v[:len(name)]) != name {
		return nil
	}
	v = v[len(name)+1:]
	for len(v) > 0 && (v[0] == ' ' || v[0] == '\t') {
		v = v[1:]
	}
	for i, c := range v {
		if c == ';' {
			v = v[:i]
			break
		}
	}
	for len(v) > 0 && (v[len(v)-1] == ' ' || v[len(v)-1] == '\t') {
		v = v[:len(v)-1]
	}
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		v = v[1 : len(v)-1]
	}
	return v
}
