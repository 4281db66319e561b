package config

import "path/filepath"

// PoolTLS is how a pool talks TLS to its https:// backends (pools.NAME.tls,
// or the flat form's backend_tls). A pool with https:// backends and no
// block verifies them against the system roots under their own host name.
// The files are read by the engine, which names the file in any error.
type PoolTLS struct {
	// CAFile holds the PEM certificates that sign the backends'
	// certificates ("" = the system roots).
	CAFile string
	// ServerName is the name sent in SNI and verified against the
	// backend's certificate ("" = each backend's host, without the port).
	ServerName string
	// InsecureSkipVerify accepts any backend certificate.
	InsecureSkipVerify bool
	// CertFile and KeyFile are the client certificate (mTLS to backends):
	// both or neither.
	CertFile string
	KeyFile  string
}

// buildPoolTLS reads the pool's TLS block under key of o (nil when absent).
// A block on a pool without https:// backends is an error: it would do
// nothing, and the operator most likely meant the backends to be https://.
func buildPoolTLS(c *checker, o *object, key string, backends []Backend) *PoolTLS {
	v := o.take(key)
	if v == nil {
		return nil
	}
	path := o.at(key)
	to := c.object(path, v)
	if to.v == nil {
		return nil
	}
	t := &PoolTLS{}
	t.CAFile = optionalFile(c, to, "ca_file")
	t.ServerName, _ = to.str("server_name", "")
	if t.ServerName != "" && !validHostname(t.ServerName) && !validIP(t.ServerName) {
		c.add(to.at("server_name"), "must be a host name or an IP address (no port), got %q", clip(t.ServerName))
	}
	t.InsecureSkipVerify, _ = to.boolean("insecure_skip_verify", false)
	if t.InsecureSkipVerify && t.CAFile != "" {
		c.add(to.at("ca_file"), "has no effect with insecure_skip_verify: true (backend certificates are not verified); remove one of them")
	}
	t.CertFile = optionalFile(c, to, "cert_file")
	t.KeyFile = optionalFile(c, to, "key_file")
	switch {
	case to.present("cert_file") && !to.present("key_file"):
		c.add(to.at("key_file"), "required with cert_file: the client certificate's PEM private key")
	case to.present("key_file") && !to.present("cert_file"):
		c.add(to.at("cert_file"), "required with key_file: the client certificate's PEM chain")
	}
	to.done()
	https := false
	for _, b := range backends {
		https = https || b.Scheme == "https"
	}
	if !https && len(backends) > 0 {
		c.add(path, "has no effect: no backend of this pool is https://; use https:// backend URLs or remove %s", key)
	}
	return t
}

// optionalFile reads a file name key of o that may be absent but not empty.
func optionalFile(c *checker, o *object, key string) string {
	if !o.present(key) {
		o.take(key)
		return ""
	}
	return requiredFile(c, o, key)
}

// resolvePoolTLSFiles makes the pools' relative TLS file names relative to
// baseDir (the configuration file's directory), like resolveTLSFiles.
func resolvePoolTLSFiles(cfg *Config, baseDir string) {
	if baseDir == "" {
		return
	}
	for i := range cfg.Pools {
		t := cfg.Pools[i].TLS
		if t == nil {
			continue
		}
		for _, p := range []*string{&t.CAFile, &t.CertFile, &t.KeyFile} {
			if *p != "" && !filepath.IsAbs(*p) {
				*p = filepath.Join(baseDir, *p)
			}
		}
	}
}
