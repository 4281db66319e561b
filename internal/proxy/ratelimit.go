package proxy

import (
	"net/netip"
	"strconv"
	"time"

	"fulcrum/internal/config"
	"fulcrum/internal/h1"
	"fulcrum/internal/ratelimit"
)

// rateLimiter is the server's rate limit: a ratelimit.Limiter and the config
// it was built from, so that a reload with the same config keeps the buckets.
type rateLimiter struct {
	cfg config.RateLimit
	lim *ratelimit.Limiter
}

func newRateLimiter(cfg *config.RateLimit) *rateLimiter {
	return &rateLimiter{cfg: *cfg, lim: ratelimit.New(cfg.RequestsPerSecond, cfg.Burst)}
}

func (l *rateLimiter) sameConfig(c *config.RateLimit) bool { return l.cfg == *c }

// allow takes a token for key. When none is left it returns the seconds after
// which one will be.
func (l *rateLimiter) allow(key []byte, now time.Time) (bool, int) { return l.lim.Allow(key, now) }

// rateKey returns the rate-limit key of the current request.
func (c *clientConn) rateKey(l *rateLimiter, client netip.Addr) []byte {
	if l.cfg.Key.Kind == config.KindHeader {
		if v := h1.Get(c.req.Headers, l.cfg.Key.Name); len(v) > 0 {
			return v
		}
	}
	a := client.As16()
	c.keyBuf = append(c.keyBuf[:0], a[:]...)
	return c.keyBuf
}

// writeRateLimited answers 429 with Retry-After. A request body that was not
// read forces the connection closed.
func (c *clientConn) writeRateLimited(retry int, ri reqInfo, start time.Time) bool {
	if retry < 1 {
		retry = 1
	}
	var extra [32]byte
	h := append(extra[:0], "Retry-After: "...)
	h = strconv.AppendInt(h, int64(retry), 10)
	h = append(h, '\r', '\n')
	keep := c.writeAnswer(429, "rate limit exceeded", ri.keepAlive && ri.cl <= 0 && !ri.chunked, h)
	c.srv.finish(c, nil, ri, 429, start, nil)
	return keep
}
