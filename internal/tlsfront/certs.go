// Package tlsfront terminates TLS on a listener: it loads the listener's
// certificates, picks one per handshake by SNI, and swaps in new files on
// reload or when they change on disk, keeping the old ones on any error.
package tlsfront

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"fulcrum/internal/config"
)

// certSet is one loaded generation of a listener's certificates; it is
// read-only once built.
type certSet struct {
	all      []*tls.Certificate
	exact    map[string][]*tls.Certificate // lower-case DNS name
	wildcard map[string][]*tls.Certificate // "example.com" for "*.example.com"
	strict   bool
	conf     *tls.Config // the handshake settings with this set's certificates
	refuse   *tls.Config // no certificates: crypto/tls answers unrecognized_name
	stamps   []stamp     // the files it was read from, to notice changes
	// warnings: certificates already expired or expiring within a week.
	warnings []string
}

// stamp identifies a file's content cheaply (modification time and size).
type stamp struct {
	name string
	mod  time.Time
	size int64
	err  bool
}

func stampOf(name string) stamp {
	fi, err := os.Stat(name)
	if err != nil {
		return stamp{name: name, err: true}
	}
	return stamp{name: name, mod: fi.ModTime(), size: fi.Size()}
}

// expiryWarning is how soon before expiry a certificate is warned about.
const expiryWarning = 7 * 24 * time.Hour

// load reads the files of spec. Every error names the file.
func load(spec *config.TLS, now time.Time) (*certSet, error) {
	cs := &certSet{exact: map[string][]*tls.Certificate{}, wildcard: map[string][]*tls.Certificate{}, strict: spec.StrictSNI}
	for _, cf := range spec.Certificates {
		cs.stamps = append(cs.stamps, stampOf(cf.CertFile), stampOf(cf.KeyFile))
		cert, err := loadPair(cf)
		if err != nil {
			return nil, err
		}
		cs.all = append(cs.all, cert)
		leaf := cert.Leaf
		for _, n := range names(leaf) {
			n = strings.ToLower(n)
			if rest, ok := strings.CutPrefix(n, "*."); ok {
				cs.wildcard[rest] = append(cs.wildcard[rest], cert)
			} else {
				cs.exact[n] = append(cs.exact[n], cert)
			}
		}
		switch left := leaf.NotAfter.Sub(now); {
		case left <= 0:
			cs.warnings = append(cs.warnings, fmt.Sprintf("certificate %s expired at %s; it is still served", cf.CertFile, leaf.NotAfter.UTC().Format(time.RFC3339)))
		case left < expiryWarning:
			cs.warnings = append(cs.warnings, fmt.Sprintf("certificate %s expires at %s, in less than 7 days", cf.CertFile, leaf.NotAfter.UTC().Format(time.RFC3339)))
		}
	}
	if len(cs.all) == 0 && spec.ACME == nil {
		return nil, errors.New("no certificates")
	}
	base := baseConfig(spec)
	if ca := spec.ClientAuth; ca != nil {
		cs.stamps = append(cs.stamps, stampOf(ca.CAFile))
		pem, err := os.ReadFile(ca.CAFile)
		if err != nil {
			return nil, fmt.Errorf("client_auth.ca_file %s: %w", ca.CAFile, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("client_auth.ca_file %s: no PEM certificate in it", ca.CAFile)
		}
		base.ClientCAs = pool
		base.ClientAuth = tls.RequireAndVerifyClientCert
		if ca.Mode == "verify_if_given" {
			base.ClientAuth = tls.VerifyClientCertIfGiven
		}
	}
	cs.refuse = base.Clone()
	// The Front that installs cs sets GetCertificate (it also asks ACME).
	cs.conf = base
	return cs, nil
}

func loadPair(cf config.CertFiles) (*tls.Certificate, error) {
	certPEM, err := os.ReadFile(cf.CertFile)
	if err != nil {
		return nil, fmt.Errorf("cert_file %s: %w", cf.CertFile, err)
	}
	keyPEM, err := os.ReadFile(cf.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("key_file %s: %w", cf.KeyFile, err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("cert_file %s with key_file %s: %w", cf.CertFile, cf.KeyFile, err)
	}
	if cert.Leaf == nil {
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("cert_file %s: %w", cf.CertFile, err)
		}
	}
	return &cert, nil
}

// names are the DNS names a certificate serves: its SANs, or its common
// name when it has none (old self-made certificates).
func names(leaf *x509.Certificate) []string {
	if len(leaf.DNSNames) > 0 {
		return leaf.DNSNames
	}
	if leaf.Subject.CommonName != "" {
		return []string{leaf.Subject.CommonName}
	}
	return nil
}

// summary lists each certificate's name and expiry, for events.
func (cs *certSet) summary() string {
	var b strings.Builder
	for i, c := range cs.all {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s until %s", label(c, i), c.Leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	return b.String()
}

// label is the certificate's name in the expiry metric: its first DNS name.
func label(c *tls.Certificate, i int) string {
	if n := names(c.Leaf); len(n) > 0 {
		return n[0]
	}
	return fmt.Sprintf("certificate-%d", i)
}

// pick returns the certificate for h's SNI: exact names first, then a
// wildcard one label up; among several (ECDSA and RSA) the first the client
// supports. nil when nothing matches (or there is no SNI).
func (cs *certSet) pick(h *tls.ClientHelloInfo) *tls.Certificate {
	name := strings.TrimSuffix(h.ServerName, ".")
	if name == "" {
		return nil
	}
	name = strings.ToLower(name)
	cands := cs.exact[name]
	if cands == nil {
		if _, rest, ok := strings.Cut(name, "."); ok {
			cands = cs.wildcard[rest]
		}
	}
	if len(cands) == 0 {
		return nil
	}
	for _, c := range cands {
		if h.SupportsCertificate(c) == nil {
			return c
		}
	}
	return cands[0]
}

// baseConfig is the handshake policy: TLS 1.2 (or 1.3) and up, AEAD suites
// with forward secrecy only, X25519 and P-256. crypto/tls never
// renegotiates as a server, has no compression, and rotates its in-memory
// session ticket keys every day.
func baseConfig(spec *config.TLS) *tls.Config {
	c := &tls.Config{
		MinVersion: tls.VersionTLS12,
		CipherSuites: []uint16{
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
		},
		CurvePreferences: []tls.CurveID{tls.X25519, tls.CurveP256},
		NextProtos:       []string{"http/1.1"},
	}
	if spec.MinVersion == "1.3" {
		c.MinVersion = tls.VersionTLS13
	}
	return c
}
