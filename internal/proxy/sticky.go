package proxy

import (
	"net/netip"
	"strconv"
	"time"

	"fulcrum/internal/balance"
	"fulcrum/internal/config"
	"fulcrum/internal/h1"
	"fulcrum/internal/pool"
	sess "fulcrum/internal/sticky" // proxy's own type is named sticky
)

// sticky is the session-persistence state of a server. The app_cookie table
// survives reloads while the sticky config keeps its type and cookie name.
type sticky struct {
	cfg config.Sticky
	app *sess.Table
}

func newSticky(cfg *config.Sticky, old *sticky) *sticky {
	if cfg == nil {
		return nil
	}
	s := &sticky{cfg: *cfg}
	if cfg.Type == "app_cookie" {
		if old != nil && old.app != nil && old.cfg.CookieName == cfg.CookieName {
			s.app = old.app
			s.app.SetLimits(cfg.MaxEntries, cfg.TTL)
		} else {
			s.app = sess.NewTable(cfg.MaxEntries, cfg.TTL)
		}
	}
	return s
}

// stickyResult says what happened to a request's pin.
type stickyResult uint8

const (
	stickyNone     stickyResult = iota
	stickyHit                   // pinned backend used
	stickyMiss                  // no pin: the strategy picked, a pin is set
	stickyRepinned              // the pin was stale, tampered or down: moved
)

var stickyLabels = [...]string{"", "hit", "miss", "repinned"}

// DecodeStickyCookie parses a sticky cookie value (16 lowercase hex digits).
func DecodeStickyCookie(v []byte) (uint64, bool) { return sess.DecodeCookie(v) }

// lookup resolves the request's pin. It returns the member index to use (-1
// for "let the strategy pick") and the result class.
func (s *sticky) lookup(c *clientConn, snap *pool.Snapshot, client netip.Addr) (int, stickyResult) {
	now := time.Now()
	switch s.cfg.Type {
	case "cookie":
		v := CookieValue(c.req.Headers, s.cfg.CookieName)
		if v == nil {
			return -1, stickyMiss
		}
		id, ok := sess.DecodeCookie(v)
		if !ok {
			return -1, stickyRepinned
		}
		idx, ok := snap.ByStickyID[id]
		if !ok || !snap.Members[idx].State.Serving(now) {
			return -1, stickyRepinned
		}
		return idx, stickyHit
	case "app_cookie":
		v := CookieValue(c.req.Headers, s.cfg.CookieName)
		if len(v) == 0 {
			return -1, stickyMiss
		}
		id, ok := s.app.Get(v, now)
		if !ok {
			return -1, stickyRepinned
		}
		idx, ok := snap.ByStickyID[id]
		if !ok || !snap.Members[idx].State.Serving(now) {
			return -1, stickyRepinned
		}
		return idx, stickyHit
	case "source_ip":
		if snap.SourceIP == nil {
			return -1, stickyMiss
		}
		// A request of its own: c.call.Pick may carry the strategy's hash key.
		r := balance.Request{Hash: hashAddr(client), HasHash: true}
		b, err := snap.SourceIP.Pick(&r)
		if err != nil {
			return -1, stickyMiss
		}
		return b.Index, stickyHit
	}
	return -1, stickyNone
}

// setCookie appends the Set-Cookie value pinning the client to mem, or returns
// dst unchanged when no cookie is needed.
//
// httpsClient says the client connection is HTTPS: it came to a TLS
// listener, or a trusted proxy in front reported X-Forwarded-Proto: https. With
// secure "auto" the cookie is Secure then, and whenever SameSite=None, which
// browsers accept only with Secure.
func (s *sticky) setCookie(dst []byte, res stickyResult, used int, pinned int, snap *pool.Snapshot, resp *h1.Response, requestCookie []byte, httpsClient bool) []byte {
	switch s.cfg.Type {
	case "cookie":
		if res == stickyHit && used == pinned {
			return dst
		}
		id := snap.StickyIDs[used]
		dst = append(dst, s.cfg.CookieName...)
		dst = append(dst, '=')
		dst = sess.AppendCookie(dst, id)
		dst = appendCookieAttrs(dst, &s.cfg, httpsClient)
	case "app_cookie":
		// Learn value -> backend from the backend's own Set-Cookie.
		id := snap.StickyIDs[used]
		learned := false
		for i := range resp.Headers {
			h := &resp.Headers[i]
			if !h1.EqualFold(h.Name, "Set-Cookie") {
				continue
			}
			if v := sess.SetCookieValue(h.Value, s.cfg.CookieName); len(v) > 0 && len(v) <= sess.MaxAppCookieLen {
				s.app.Put(v, id, time.Now())
				learned = true
			}
		}
		// A request whose app cookie moved to another backend: re-pin it there.
		// Only a value the table already knows is moved: values a client
		// invents are never stored, so clients cannot fill the table.
		if !learned && len(requestCookie) > 0 && len(requestCookie) <= sess.MaxAppCookieLen && used != pinned {
			if _, known := s.app.Get(requestCookie, time.Now()); known {
				s.app.Put(requestCookie, id, time.Now())
			}
		}
	}
	return dst
}

// appendCookieAttrs appends the attributes of a cookie fulcrum sets: Path=/
// and those the sticky configuration asks for.
func appendCookieAttrs(dst []byte, cfg *config.Sticky, httpsClient bool) []byte {
	dst = append(dst, "; Path=/"...)
	if cfg.TTL > 0 {
		dst = append(dst, "; Max-Age="...)
		// Round up: a sub-second ttl must not become Max-Age=0, which
		// tells the browser to delete the cookie at once (RFC 6265 5.2.2).
		dst = strconv.AppendInt(dst, int64((cfg.TTL+time.Second-1)/time.Second), 10)
	}
	if cfg.Secure == "true" || (cfg.Secure == "auto" && (cfg.SameSite == "none" || httpsClient)) {
		dst = append(dst, "; Secure"...)
	}
	if cfg.HTTPOnly {
		dst = append(dst, "; HttpOnly"...)
	}
	switch cfg.SameSite {
	case "lax":
		dst = append(dst, "; SameSite=Lax"...)
	case "strict":
		dst = append(dst, "; SameSite=Strict"...)
	case "none":
		dst = append(dst, "; SameSite=None"...)
	}
	return dst
}
