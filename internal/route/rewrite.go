package route

import (
	"bytes"
	"strconv"
)

// Rewrites reports whether the route changes the request target it
// forwards (strip_prefix or add_prefix). When it does not, the front
// forwards the client's own target unchanged.
func (r *Route) Rewrites() bool { return r.stripPrefix != "" || r.addPrefix != "" }

// AppendTarget appends to dst the origin-form target to forward for the
// client's target (as in Request.Target), applying strip_prefix, then
// add_prefix, and keeping the query as the client sent it. The path is the
// normalised one, which is the client's own unless it held "." or ".."
// segments or encoded unreserved characters: the rewrite then works on the
// path the route matched, so "/v1/../v1/x" stripped of "/v1" is "/x" and a
// backend cannot be steered outside the prefix. strip_prefix removes the
// prefix only at a segment boundary ("/v1" strips "/v1" and "/v1/x", not
// "/v1x"); an emptied path becomes "/". Without a rewrite the target is
// appended unchanged. It allocates only if dst must grow.
func (r *Route) AppendTarget(dst, target []byte) []byte {
	if !r.Rewrites() {
		return append(dst, target...)
	}
	path, query := splitTarget(target)
	if len(path) == 1 && path[0] == '*' {
		return append(dst, target...)
	}
	dst = append(dst, r.addPrefix...)
	p := len(dst)
	dst = NormalPath(dst, path)
	if r.stripPrefix != "" && prefixMatch(dst[p:], r.stripPrefix) {
		n := copy(dst[p:], dst[p+len(r.stripPrefix):])
		dst = dst[:p+n]
		if n == 0 {
			dst = append(dst, '/')
		}
	}
	if query != nil {
		dst = append(dst, '?')
		dst = append(dst, query...)
	}
	return dst
}

// AppendLocation appends to dst the Location of an ActionRedirect route's
// answer to req. Each part the redirect does not give keeps the request's:
// the scheme (req.Scheme, "http" when empty), the host (req.Host without
// its port), the port (kept only when the redirect changes neither scheme
// nor port, since a new scheme means its default port; a default port is
// left out), the path as the client sent it; the query is always kept.
// When neither the redirect nor the request has a host, the Location is the
// relative path?query. Bytes of the request that may not appear in a field
// value are percent-encoded (path, query) or make the host unusable.
func (r *Route) AppendLocation(dst []byte, req *Request) []byte {
	d := &r.redirect
	path, query := splitTarget(req.Target)
	if d.Path != "" {
		path = nil
	}
	reqHost, reqPort := splitHostPort(req.Host)
	if !safeHost(reqHost) || !safeHost(reqPort) {
		reqHost, reqPort = nil, nil
	}
	scheme := d.Scheme
	if scheme == "" {
		scheme = "http"
		if len(req.Scheme) > 0 && string(req.Scheme) == "https" {
			scheme = "https"
		}
	}
	if d.Host != "" || len(reqHost) > 0 {
		dst = append(dst, scheme...)
		dst = append(dst, "://"...)
		if d.Host != "" {
			dst = append(dst, d.Host...)
		} else {
			dst = append(dst, reqHost...)
		}
		def := "80"
		if scheme == "https" {
			def = "443"
		}
		switch {
		case d.Port > 0:
			if p := strconv.Itoa(d.Port); p != def {
				dst = append(dst, ':')
				dst = append(dst, p...)
			}
		case d.Scheme == "" && len(reqPort) > 0 && string(reqPort) != def:
			dst = append(dst, ':')
			dst = append(dst, reqPort...)
		}
	}
	switch {
	case d.Path != "":
		dst = append(dst, d.Path...)
	case len(path) == 0 || path[0] != '/':
		dst = append(dst, '/')
	default:
		dst = appendSafe(dst, path)
	}
	if query != nil {
		dst = append(dst, '?')
		dst = appendSafe(dst, query)
	}
	return dst
}

// splitHostPort splits an authority into host (IPv6 brackets kept, one
// trailing dot removed) and port (nil when none).
func splitHostPort(a []byte) (host, port []byte) {
	host = hostName(a)
	rest := a[len(host):]
	if len(rest) > 0 && rest[0] == '.' {
		rest = rest[1:]
	}
	if len(rest) > 1 && rest[0] == ':' {
		port = rest[1:]
	}
	return host, port
}

func safeHost(b []byte) bool {
	for _, c := range b {
		if c <= ' ' || c >= 0x7f || bytes.IndexByte([]byte(`"<>\^{|}/?#@`), c) >= 0 {
			return false
		}
	}
	return true
}

// appendSafe appends b, percent-encoding the bytes a field value may not
// carry (controls, space, DEL, non-ASCII).
func appendSafe(dst, b []byte) []byte {
	const hex = "0123456789ABCDEF"
	for _, c := range b {
		if c <= ' ' || c >= 0x7f {
			dst = append(dst, '%', hex[c>>4], hex[c&15])
			continue
		}
		dst = append(dst, c)
	}
	return dst
}
