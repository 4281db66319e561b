package config

import (
	"path/filepath"
)

// TLS is a listener's HTTPS termination (listeners[].tls, or the flat
// form's tls_cert_file and tls_key_file). The files are read by the engine
// (internal/tlsfront), which names the file in any error.
type TLS struct {
	Certificates []CertFiles
	// MinVersion is "1.2" (default) or "1.3".
	MinVersion string
	// StrictSNI refuses a ClientHello whose SNI matches no certificate
	// (alert unrecognized_name) instead of serving the first certificate.
	StrictSNI  bool
	ClientAuth *ClientAuth // nil = no client certificates asked for
	// ACME obtains certificates for its domains automatically; nil = none.
	ACME *ACME
}

// CertFiles is one certificate chain and its private key, PEM files.
type CertFiles struct {
	CertFile string
	KeyFile  string
}

// ClientAuth asks TLS clients for a certificate signed by CAFile (mTLS).
type ClientAuth struct {
	CAFile string
	Mode   string // "require" or "verify_if_given"
}

// TLSMinVersions are the accepted tls.min_version values.
var TLSMinVersions = []string{"1.2", "1.3"}

func buildTLS(c *checker, path string, v *value) *TLS {
	o := c.object(path, v)
	if o.v == nil {
		return nil
	}
	t := &TLS{}
	if lv := o.take("certificates"); lv != nil {
		p := o.at("certificates")
		if lv.kind != kindList {
			c.typeProblem(p, `a list like [{cert_file: site.pem, key_file: site.key}]`, lv)
		} else {
			for i, item := range lv.items {
				co := c.object(indexPath(p, i), item)
				if co.v == nil {
					continue
				}
				cf := CertFiles{}
				cf.CertFile = requiredFile(c, co, "cert_file")
				cf.KeyFile = requiredFile(c, co, "key_file")
				co.done()
				t.Certificates = append(t.Certificates, cf)
			}
		}
	}
	t.MinVersion, _ = o.enum("min_version", "1.2", TLSMinVersions)
	t.StrictSNI, _ = o.boolean("strict_sni", false)
	if av := o.take("client_auth"); av != nil {
		ao := c.object(o.at("client_auth"), av)
		if ao.v != nil {
			ca := &ClientAuth{}
			ca.CAFile = requiredFile(c, ao, "ca_file")
			ca.Mode, _ = ao.enum("mode", "require", []string{"require", "verify_if_given"})
			ao.done()
			t.ClientAuth = ca
		}
	}
	if av := o.take("acme"); av != nil {
		t.ACME = buildACME(c, o.at("acme"), av)
	}
	if len(t.Certificates) == 0 && t.ACME == nil {
		c.add(o.at("certificates"), "required: at least one {cert_file, key_file}, or an acme block")
	}
	o.done()
	return t
}

// requiredFile reads a non-empty file name key of o.
func requiredFile(c *checker, o *object, key string) string {
	v := o.take(key)
	if v == nil {
		c.add(o.at(key), "required: a PEM file")
		return ""
	}
	s, ok := c.str(o.at(key), v)
	if ok && s == "" {
		c.add(o.at(key), "must not be empty")
	}
	return s
}

// buildFlatTLS reads the flat form's tls_cert_file and tls_key_file.
func buildFlatTLS(c *checker, top *object) *TLS {
	if !top.present("tls_cert_file") && !top.present("tls_key_file") {
		top.take("tls_cert_file")
		top.take("tls_key_file")
		return nil
	}
	cf := CertFiles{CertFile: requiredFile(c, top, "tls_cert_file"), KeyFile: requiredFile(c, top, "tls_key_file")}
	return &TLS{Certificates: []CertFiles{cf}, MinVersion: "1.2"}
}

// resolveTLSFiles makes the listeners' relative TLS file names relative to
// baseDir (the configuration file's directory), like admin_token_file.
func resolveTLSFiles(cfg *Config, baseDir string) {
	if baseDir == "" {
		return
	}
	abs := func(p *string) {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(baseDir, *p)
		}
	}
	for i := range cfg.Listeners {
		t := cfg.Listeners[i].TLS
		if t == nil {
			continue
		}
		for j := range t.Certificates {
			abs(&t.Certificates[j].CertFile)
			abs(&t.Certificates[j].KeyFile)
		}
		if t.ClientAuth != nil {
			abs(&t.ClientAuth.CAFile)
		}
		if t.ACME != nil {
			abs(&t.ACME.CAFile)
			abs(&t.ACME.StorageDir)
		}
	}
}
