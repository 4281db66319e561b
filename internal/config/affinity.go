package config

import (
	"math"
	"strconv"
	"time"
)

// Builders of the sticky and rate_limit objects (pool and listener keys).

// buildSticky checks the sticky object.
func buildSticky(c *checker, path string, v *value) *Sticky {
	o := c.object(path, v)
	if o.v == nil {
		return nil
	}
	s := &Sticky{}
	types := []string{"cookie", "source_ip", "app_cookie"}
	if tv := o.take("type"); tv == nil {
		c.add(o.at("type"), "required: one of %s", quoteList(types))
	} else {
		s.Type, _ = c.enum(o.at("type"), tv, types)
	}
	cookieName := func(def string) {
		s.CookieName, _ = o.str("cookie_name", def)
		if o.present("cookie_name") && !isToken(s.CookieName) {
			c.add(o.at("cookie_name"), "%q is not a valid cookie name (RFC 6265 token)", clip(s.CookieName))
		}
	}
	switch s.Type {
	case "cookie":
		cookieName(defaultStickyCookie)
		s.TTL, _ = o.duration("ttl", 0, false)
		s.Secure = "auto"
		if sv := o.take("secure"); sv != nil {
			if sv.kind == kindBool {
				s.Secure = strconv.FormatBool(sv.b)
			} else {
				s.Secure, _ = c.enum(o.at("secure"), sv, []string{"auto", "true", "false"})
			}
		}
		s.HTTPOnly, _ = o.boolean("http_only", true)
		var ok bool
		s.SameSite, ok = o.enum("same_site", "lax", []string{"lax", "strict", "none"})
		if ok && s.SameSite == "none" && s.Secure == "false" {
			c.add(o.at("same_site"), `"none" requires secure cookies (browsers reject SameSite=None without Secure); set secure to "auto" or "true"`)
		}
		s.Secret, _ = o.str("secret", "")
		o.notAllowed("max_entries", `only applies to sticky type "app_cookie"`)
	case "app_cookie":
		if !o.present("cookie_name") {
			c.add(o.at("cookie_name"), `required for sticky type "app_cookie": the name of the application's session cookie`)
		}
		cookieName("")
		s.TTL, _ = o.duration("ttl", time.Hour, true)
		s.MaxEntries, _ = o.integer("max_entries", 100000, 1, noMax)
		for _, k := range []string{"secure", "http_only", "same_site", "secret"} {
			o.notAllowed(k, `only applies to sticky type "cookie" (the application sets its own cookie)`)
		}
	case "source_ip":
		for _, k := range []string{"cookie_name", "ttl", "secure", "http_only", "same_site", "max_entries", "secret"} {
			o.notAllowed(k, `unknown key for sticky type "source_ip" (it takes no other keys)`)
		}
	default:
		// Type missing or invalid (already reported): accept the other keys
		// silently rather than piling up follow-on problems.
		for _, k := range []string{"cookie_name", "ttl", "secure", "http_only", "same_site", "max_entries", "secret"} {
			o.take(k)
		}
	}
	o.done()
	return s
}

// buildRateLimit checks the rate_limit object.
func buildRateLimit(c *checker, path string, v *value) *RateLimit {
	o := c.object(path, v)
	if o.v == nil {
		return nil
	}
	rl := &RateLimit{Key: HashKey{Kind: KindClientIP}}
	rpsOK := false
	if rv := o.take("requests_per_second"); rv == nil {
		c.add(o.at("requests_per_second"), "required: a number > 0")
	} else if rv.kind != kindNumber {
		c.typeProblem(o.at("requests_per_second"), "a number", rv)
	} else if f, ok := number(rv.s); !ok || f <= 0 || f > maxRequestsPerSecond {
		c.add(o.at("requests_per_second"), "must be a number > 0 and <= %d, got %s", int64(maxRequestsPerSecond), clip(rv.s))
	} else {
		rl.RequestsPerSecond, rpsOK = f, true
	}
	defBurst := int64(1)
	if rpsOK {
		defBurst = int64(math.Ceil(rl.RequestsPerSecond))
	}
	rl.Burst, _ = o.integer("burst", defBurst, 1, noMax)
	if kv := o.take("key"); kv != nil {
		if s, ok := c.str(o.at("key"), kv); ok {
			hk, err := ParseHashKey(s)
			switch {
			case err != nil:
				c.add(o.at("key"), "%v", err)
			case hk.Kind != KindClientIP && hk.Kind != KindHeader:
				c.add(o.at("key"), `must be "client_ip" or "header:NAME", got %q`, clip(s))
			default:
				rl.Key = hk
			}
		}
	}
	o.done()
	return rl
}
