package config

import (
	"math"
	"strings"
	"time"
)

// buildPool reads the per-pool keys of o (the top level in the flat form, a
// pool object over the top-level defaults in the full form).
func buildPool(c *checker, o *object, name string) Pool {
	pool := &Pool{Name: name}
	pool.Backends = buildBackends(c, o.at("backends"), o.take("backends"))

	pool.Strategy = defaultStrategy
	strategyOK := true
	if v := o.take("strategy"); v != nil {
		var s string
		if s, strategyOK = c.str(o.at("strategy"), v); strategyOK {
			if knownStrategy(s) {
				pool.Strategy = s
			} else {
				c.add(o.at("strategy"), "unknown strategy %q (valid: %s)", clip(s), strings.Join(Strategies, ", "))
				strategyOK = false
			}
		}
	}
	if strategyOK && pool.Strategy == "round_robin" && unequalWeights(pool.Backends) {
		c.warn(o.at("strategy"), `"round_robin" ignores backend weights, and these backends have different weights; use "weighted_round_robin" to spread requests by weight`)
	}

	hashKey := o.take("hash_key")
	if hashKey != nil {
		if s, ok := c.str(o.at("hash_key"), hashKey); ok {
			hk, err := ParseHashKey(s)
			switch {
			case err != nil:
				c.add(o.at("hash_key"), "%v", err)
			case hk.Kind == KindClientIP:
				c.add(o.at("hash_key"), `"client_ip" is not a hash_key; use strategy "ip_hash" to hash on the client address`)
			case pool.Strategy == "consistent_hash":
				pool.HashKey = hk
			case strategyOK: // an unknown strategy is reported already
				c.add(o.at("hash_key"), `only applies to strategy "consistent_hash", but strategy is %q; remove hash_key or set strategy to "consistent_hash"`, pool.Strategy)
			}
		}
	} else if pool.Strategy == "consistent_hash" {
		c.add(o.at("hash_key"), `required when strategy is "consistent_hash" (e.g. "header:X-User-ID", "cookie:session", "query:id" or "path")`)
	}

	interval, _ := o.duration("health_check_interval", defaultHCInterval, true)
	maxFails, _ := o.integer("max_fail_count", defaultMaxFailCount, 1, noMax)

	if hc := o.take("health_check"); hc != nil {
		if _, inherited := o.origin["health_check_interval"]; o.present("health_check_interval") && !inherited {
			c.add(o.at("health_check_interval"), "has no effect when health_check is set; use health_check.interval")
		}
		pool.HealthCheck = buildHealthCheck(c, o.at("health_check"), hc)
	} else {
		// The original flat design: a TCP connect check every
		// health_check_interval, down after max_fail_count failures.
		pool.HealthCheck = HealthCheck{
			Type:               "tcp",
			Path:               "/",
			Interval:           interval,
			Timeout:            min(2*time.Second, interval),
			ExpectedStatus:     []StatusRange{{200, 399}},
			HealthyThreshold:   1,
			UnhealthyThreshold: maxFails,
		}
	}

	pool.Passive = buildPassive(c, o.at("passive"), o.take("passive"), maxFails)

	pool.PanicThreshold, _ = o.integer("panic_threshold", 50, 0, 100)
	pool.Retries, _ = o.integer("retries", 2, 0, maxRetries)
	pool.RetryBuffer, _ = o.size("retry_buffer", 64<<10, 0, maxRetryBuffer)
	pool.ConnectTimeout, _ = o.duration("connect_timeout", 5*time.Second, true)
	pool.ResponseHeaderTimeout, _ = o.duration("response_header_timeout", 60*time.Second, true)
	pool.IdleTimeout, _ = o.duration("idle_timeout", 60*time.Second, true)
	pool.MaxConnections, _ = o.integer("max_connections", 0, 0, noMax)
	pool.QueueTimeout, _ = o.duration("queue_timeout", 0, false)
	pool.SlowStart, _ = o.duration("slow_start", 0, false)

	if v := o.take("sticky"); v != nil {
		pool.Sticky = buildSticky(c, o.at("sticky"), v)
	}
	return *pool
}

// buildListener reads the per-listener keys of o, except name and routes.
func buildListener(c *checker, o *object, name string) Listener {
	l := Listener{Name: name}
	if s, ok := o.str("listen_addr", defaultListen); ok {
		if _, err := checkListenAddr(s); err != nil {
			c.add(o.at("listen_addr"), "%v", err)
		}
		l.Listen = s
	}
	l.Limits.IdleTimeout, _ = o.duration("idle_timeout", 60*time.Second, true)
	if v := o.take("rate_limit"); v != nil {
		l.RateLimit = buildRateLimit(c, o.at("rate_limit"), v)
	}
	l.TrustedProxies = buildTrustedProxies(c, o.at("trusted_proxies"), o.take("trusted_proxies"))
	l.RequestID, _ = o.boolean("request_id", true)
	if v := o.take("tls"); v != nil {
		l.TLS = buildTLS(c, o.at("tls"), v)
	}

	lim := &l.Limits
	lim.ReadHeaderTimeout, _ = o.duration("read_header_timeout", 10*time.Second, true)
	lim.ReadTimeout, _ = o.duration("read_timeout", 60*time.Second, false)
	lim.WriteTimeout, _ = o.duration("write_timeout", 60*time.Second, false)
	mhb, _ := o.size("max_header_bytes", 64<<10, 1024, noMax)
	lim.MaxHeaderBytes = int(mhb)
	lim.MaxBodyBytes, _ = o.size("max_body_bytes", 0, 0, math.MaxInt64)
	lim.MaxConns, _ = o.integer("max_conns", 50000, 0, noMax)
	lim.MaxConnsPerIP, _ = o.integer("max_conns_per_ip", 0, 0, noMax)

	return l
}
