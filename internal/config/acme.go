package config

import (
	"net/url"
	"path/filepath"
	"slices"
	"strings"
)

// ACME obtains and renews a TLS listener's certificates automatically
// (listeners[].tls.acme). The engine (internal/acme) talks to the CA.
type ACME struct {
	// Domains are the names to obtain certificates for (no wildcards:
	// http-01 and tls-alpn-01 cannot prove them).
	Domains []string
	Email   string
	// Directory is the CA's ACME directory URL.
	Directory string
	// CAFile, when set, is the only trust anchor for the directory's HTTPS
	// (a private ACME server: tests and internal CAs).
	CAFile string
	// StorageDir keeps the account key and the certificates (files 0600).
	StorageDir string
	// Challenges are the challenge types offered: http-01, tls-alpn-01.
	Challenges []string
}

// Defaults of the acme block.
const (
	DefaultACMEDirectory  = "https://acme-v02.api.letsencrypt.org/directory"
	DefaultACMEStorageDir = "fulcrum-data"
)

// ACMEChallenges are the challenge types fulcrum can answer.
var ACMEChallenges = []string{"http-01", "tls-alpn-01"}

func buildACME(c *checker, path string, v *value) *ACME {
	o := c.object(path, v)
	if o.v == nil {
		return nil
	}
	a := &ACME{}
	present := o.present("domains")
	var ok bool
	a.Domains, ok = stringList(c, o, "domains")
	if !present {
		c.add(o.at("domains"), "required: the names to obtain a certificate for, e.g. [example.com, www.example.com]")
	} else if ok && len(a.Domains) == 0 {
		c.add(o.at("domains"), "must list at least one name")
	}
	for i, d := range a.Domains {
		if msg := checkACMEDomain(d); msg != "" {
			c.add(indexPath(o.at("domains"), i), "%s", msg)
		}
		a.Domains[i] = strings.ToLower(strings.TrimSuffix(d, "."))
	}
	a.Email, _ = o.str("email", "")
	if a.Email != "" && !strings.Contains(a.Email, "@") {
		c.add(o.at("email"), "%q is not an e-mail address", clip(a.Email))
	}
	if s, ok := o.str("directory", DefaultACMEDirectory); ok {
		if u, err := url.Parse(s); err != nil || u.Scheme != "https" || u.Host == "" {
			c.add(o.at("directory"), "%q is not an https:// URL of an ACME directory", clip(s))
		}
		a.Directory = s
	}
	a.CAFile, _ = o.str("ca_file", "")
	a.StorageDir, _ = o.str("storage_dir", DefaultACMEStorageDir)
	if a.StorageDir == "" {
		c.add(o.at("storage_dir"), "must not be empty")
	}
	if o.present("challenges") {
		a.Challenges, ok = stringList(c, o, "challenges")
		if ok && len(a.Challenges) == 0 {
			c.add(o.at("challenges"), "must list at least one of http-01, tls-alpn-01")
		}
		for i, ch := range a.Challenges {
			switch {
			case !slices.Contains(ACMEChallenges, ch):
				c.add(indexPath(o.at("challenges"), i), "%q is not a challenge fulcrum answers (http-01, tls-alpn-01)", clip(ch))
			case slices.Index(a.Challenges, ch) < i:
				c.add(indexPath(o.at("challenges"), i), "%q is listed twice", ch)
			}
		}
	} else {
		a.Challenges = slices.Clone(ACMEChallenges)
	}
	o.done()
	return a
}

// checkACMEDomain says what is wrong with d as an ACME name ("" if nothing).
func checkACMEDomain(d string) string {
	switch {
	case d == "":
		return "must not be empty"
	case strings.HasPrefix(d, "*."):
		return "wildcard names need the dns-01 challenge, which fulcrum does not answer; list the names"
	case strings.Contains(d, "*"):
		return "not a valid DNS name"
	}
	name := strings.TrimSuffix(d, ".")
	if len(name) > 253 || !strings.Contains(name, ".") {
		return "not a fully qualified DNS name (like www.example.com)"
	}
	for _, label := range strings.Split(name, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return "not a valid DNS name"
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return "not a valid DNS name"
			}
		}
	}
	return ""
}

// stringList reads key of o as a list of strings; false if it is not a list.
func stringList(c *checker, o *object, key string) ([]string, bool) {
	v := o.take(key)
	if v == nil {
		return nil, true
	}
	p := o.at(key)
	if v.kind != kindList {
		c.typeProblem(p, "a list of strings", v)
		return nil, false
	}
	out := make([]string, 0, len(v.items))
	for i, item := range v.items {
		if s, ok := c.str(indexPath(p, i), item); ok {
			out = append(out, s)
		}
	}
	return out, true
}

// checkACMEListeners: http-01 is answered on plain-HTTP listeners, so it
// needs one.
//
// A name is obtained by one ACME manager: listed twice in one list, or on
// two listeners with different storage_dir, it would be ordered twice at
// once, and the two orders' challenges (kept per name) would clobber each
// other. Two listeners sharing storage_dir share the certificate: the
// storage lock lets one order it and the other load it.
func checkACMEListeners(c *checker, cfg *Config) {
	type owner struct {
		listener int
		storage  string
	}
	owners := map[string]owner{}
	for i, l := range cfg.Listeners {
		if l.TLS == nil || l.TLS.ACME == nil {
			continue
		}
		a := l.TLS.ACME
		for k, d := range a.Domains {
			p := indexPath(childPath(childPath(childPath(indexPath("listeners", i), "tls"), "acme"), "domains"), k)
			o, seen := owners[d]
			switch {
			case !seen:
				owners[d] = owner{i, filepath.Clean(a.StorageDir)}
			case o.listener == i:
				c.add(p, "%q is listed twice", d)
			case o.storage != filepath.Clean(a.StorageDir):
				c.add(p, "%q is also obtained by listeners[%d] (%s) with another storage_dir; give both the same storage_dir to share the certificate", d, o.listener, cfg.Listeners[o.listener].Name)
			}
		}
	}
	plain := false
	for _, l := range cfg.Listeners {
		plain = plain || l.TLS == nil
	}
	for i, l := range cfg.Listeners {
		if l.TLS == nil || l.TLS.ACME == nil {
			continue
		}
		a := l.TLS.ACME
		if plain || !slices.Contains(a.Challenges, "http-01") {
			continue
		}
		p := childPath(childPath(childPath(indexPath("listeners", i), "tls"), "acme"), "challenges")
		if len(a.Challenges) == 1 {
			c.add(p, "http-01 is answered on plain-HTTP listeners and there is none; add one (the CA connects to port 80) or offer tls-alpn-01")
		} else {
			c.warn(p, "http-01 is not offered: it is answered on plain-HTTP listeners and there is none")
		}
	}
}
