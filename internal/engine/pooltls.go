package engine

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"fmt"
	"os"
	"strconv"

	"fulcrum/internal/config"
	upstreamconn "fulcrum/internal/upstream"
)

// clientTLS is a pool's client TLS to its https:// backends, built once
// per version of its settings and files.
type clientTLS struct {
	conf *tls.Config
	// sum identifies the version: the settings and the files' contents.
	sum [sha256.Size]byte
}

// loadPoolTLS builds the client TLS of every pool of cfg that has https://
// backends (nil for the others), reading its files before anything is
// started or changed. A pool whose settings and files are those of
// prev[name] keeps that one, and with it its session cache and its pooled
// connections. Every error names the pool's key and the file.
func loadPoolTLS(cfg *config.Config, prev map[string]*clientTLS) ([]*clientTLS, error) {
	out := make([]*clientTLS, len(cfg.Pools))
	for i := range cfg.Pools {
		pc := &cfg.Pools[i]
		https := 0
		for _, b := range pc.Backends {
			if b.Scheme == "https" {
				https++
			}
		}
		if https == 0 {
			continue
		}
		key := "pools." + pc.Name + ".tls"
		if cfg.Flat {
			key = "backend_tls"
		}
		ct, err := buildClientTLS(pc.TLS, key, https, prev[pc.Name])
		if err != nil {
			return nil, err
		}
		out[i] = ct
	}
	return out, nil
}

// buildClientTLS loads t (nil = defaults) for a pool of n https backends;
// key is the configuration key of t, for errors. It returns old when
// nothing changed.
func buildClientTLS(t *config.PoolTLS, key string, n int, old *clientTLS) (*clientTLS, error) {
	if t == nil {
		t = &config.PoolTLS{}
	}
	h := sha256.New()
	field := func(b []byte) {
		h.Write(binary.BigEndian.AppendUint64(nil, uint64(len(b))))
		h.Write(b)
	}
	read := func(name, what string) ([]byte, error) {
		if name == "" {
			field(nil)
			return nil, nil
		}
		data, err := os.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("%s.%s: %w", key, what, err) // *PathError names the file
		}
		field(data)
		return data, nil
	}
	for _, s := range []string{t.CAFile, t.ServerName, strconv.FormatBool(t.InsecureSkipVerify), t.CertFile, t.KeyFile} {
		field([]byte(s))
	}
	caPEM, err := read(t.CAFile, "ca_file")
	if err != nil {
		return nil, err
	}
	certPEM, err := read(t.CertFile, "cert_file")
	if err != nil {
		return nil, err
	}
	keyPEM, err := read(t.KeyFile, "key_file")
	if err != nil {
		return nil, err
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	if old != nil && old.sum == sum {
		return old, nil
	}

	var roots *x509.CertPool // nil: the system roots
	if t.CAFile != "" {
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(caPEM) {
			return nil, fmt.Errorf("%s.ca_file: %s: no PEM certificate in it", key, t.CAFile)
		}
	}
	var certs []tls.Certificate
	if t.CertFile != "" {
		c, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return nil, fmt.Errorf("%s.cert_file and key_file: %s with %s: %w", key, t.CertFile, t.KeyFile, err)
		}
		certs = []tls.Certificate{c}
	}
	return &clientTLS{conf: upstreamconn.ClientTLS(roots, t.ServerName, t.InsecureSkipVerify, certs, n), sum: sum}, nil
}

// prevPoolTLS is the client TLS of the running pools, by name.
func prevPoolTLS(run *running) map[string]*clientTLS {
	m := make(map[string]*clientTLS, len(run.pools))
	for _, u := range run.pools {
		if u.tls != nil {
			m[u.up.Name] = u.tls
		}
	}
	return m
}

// config is the configuration the pool gets (nil = the pool's defaults,
// for pools without https backends).
func (c *clientTLS) config() *tls.Config {
	if c == nil {
		return nil
	}
	return c.conf
}
