// Package acme obtains and renews a TLS listener's certificates from an
// ACME CA (Let's Encrypt, an internal CA, pebble in tests) with certmagic:
// it stores the account key and certificates, orders in the background
// with retries and back-off, renews at two thirds of a certificate's
// lifetime, and answers the CA's http-01 and tls-alpn-01 challenges through
// fulcrum's own listeners.
package acme

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/mholt/acmez/v3"

	"fulcrum/internal/config"
	"fulcrum/internal/events"
	"fulcrum/internal/metrics"
)

// RenewCheckInterval is how often the certificates are checked for
// renewal: often enough that a 3-minute certificate, renewed after 2
// minutes, is renewed then (certmagic also renews whenever less than five
// check intervals are left).
const RenewCheckInterval = 10 * time.Second

// ALPNProto is the protocol a CA's tls-alpn-01 validation offers.
const ALPNProto = acmez.ACMETLS1Protocol

// Options configure a Manager.
type Options struct {
	Listener string // the TLS listener's name, for logs and events
	Spec     *config.ACME
	// TLSAddr is the TLS listener's listen address (tls-alpn-01 is
	// answered there); HTTPAddr a plain-HTTP listener's, or "" if there is
	// none (http-01 is then not offered).
	TLSAddr, HTTPAddr string
	Log               *slog.Logger
	Metrics           *metrics.Metrics // may be nil
	Events            *events.Log      // may be nil
	// Changed is called when a certificate was obtained, renewed or loaded
	// from storage.
	Changed func()
	// RenewCheck overrides RenewCheckInterval (tests).
	RenewCheck time.Duration
}

// Manager serves and maintains the certificates of one acme block.
type Manager struct {
	opt     Options
	domains []string
	cache   *certmagic.Cache
	cfg     *certmagic.Config
	alpn    *tls.Config // the handshake settings for tls-alpn-01 validation
	cancel  context.CancelFunc
}

// Check reports what would stop spec from being used: an unreadable
// ca_file, or a storage_dir that is a file. It changes nothing on disk.
func Check(spec *config.ACME) error {
	if _, err := roots(spec); err != nil {
		return err
	}
	for dir := spec.StorageDir; ; dir = filepath.Dir(dir) {
		fi, err := os.Stat(dir)
		if err == nil {
			if !fi.IsDir() {
				return fmt.Errorf("acme.storage_dir %s: %s is not a directory", spec.StorageDir, dir)
			}
			return nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("acme.storage_dir %s: %w", spec.StorageDir, err)
		}
		if parent := filepath.Dir(dir); parent == dir {
			return nil
		}
	}
}

func roots(spec *config.ACME) (*x509.CertPool, error) {
	if spec.CAFile == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(spec.CAFile)
	if err != nil {
		return nil, fmt.Errorf("acme.ca_file %s: %w", spec.CAFile, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("acme.ca_file %s: no PEM certificate in it", spec.CAFile)
	}
	return pool, nil
}

// Start creates the storage directory (mode 0700) and starts managing
// opt.Spec's domains: certificates in storage are used at once, missing
// ones are ordered in the background.
func Start(opt Options) (*Manager, error) {
	spec := opt.Spec
	pool, err := roots(spec)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(spec.StorageDir, 0o700); err != nil {
		return nil, fmt.Errorf("acme.storage_dir %s: %w", spec.StorageDir, err)
	}
	if opt.RenewCheck <= 0 {
		opt.RenewCheck = RenewCheckInterval
	}
	zl := newZap(opt.Log.With("listener", opt.Listener))
	m := &Manager{opt: opt, domains: slices.Clone(spec.Domains)}
	m.cache = certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert:   func(certmagic.Certificate) (*certmagic.Config, error) { return m.cfg, nil },
		RenewCheckInterval: opt.RenewCheck,
		Logger:             zl,
	})
	m.cfg = certmagic.New(m.cache, certmagic.Config{
		RenewalWindowRatio: 1.0 / 3, // renew when a third of the lifetime is left
		Storage:            &certmagic.FileStorage{Path: spec.StorageDir},
		DefaultServerName:  m.domains[0],
		OnEvent:            m.onEvent,
		Logger:             zl,
	})
	iss := certmagic.ACMEIssuer{
		CA: spec.Directory, Email: spec.Email, Agreed: true, TrustedRoots: pool,
		DisableHTTPChallenge:    !slices.Contains(spec.Challenges, "http-01") || opt.HTTPAddr == "",
		DisableTLSALPNChallenge: !slices.Contains(spec.Challenges, "tls-alpn-01"),
		Logger:                  zl,
	}
	// certmagic binds a challenge port itself unless it is taken; it is, by
	// fulcrum's own listener, which answers the challenge. With the two
	// listeners on different hosts it tries all addresses (also taken).
	th, tp, tok := splitAddr(opt.TLSAddr)
	hh, hp, hok := splitAddr(opt.HTTPAddr)
	if tok {
		iss.ListenHost, iss.AltTLSALPNPort = th, tp
	}
	if hok {
		iss.AltHTTPPort = hp
		if !tok {
			iss.ListenHost = hh
		} else if hh != th {
			iss.ListenHost = ""
		}
	}
	m.cfg.Issuers = []certmagic.Issuer{certmagic.NewACMEIssuer(m.cfg, iss)}
	m.alpn = &tls.Config{MinVersion: tls.VersionTLS12, NextProtos: []string{ALPNProto}, GetCertificate: m.cfg.GetCertificate}

	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	if err := m.cfg.ManageAsync(ctx, m.domains); err != nil {
		cancel()
		m.cache.Stop()
		return nil, fmt.Errorf("acme: %w", err)
	}
	return m, nil
}

// splitAddr is addr's host and port ("" host for all addresses).
func splitAddr(addr string) (string, int, bool) {
	if addr == "" {
		return "", 0, false
	}
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, false
	}
	n, err := strconv.Atoi(p)
	if err != nil || n <= 0 {
		return "", 0, false
	}
	if h == "0.0.0.0" || h == "::" {
		h = ""
	}
	return h, n, true
}

// Stop ends ordering and renewal.
func (m *Manager) Stop() {
	m.cancel()
	m.cache.Stop()
}

// Domains are the names m obtains certificates for.
func (m *Manager) Domains() []string { return m.domains }

// Manages reports whether name (an SNI, any case) is one of m's domains.
func (m *Manager) Manages(name string) bool {
	name = strings.TrimSuffix(name, ".")
	for _, d := range m.domains {
		if strings.EqualFold(d, name) {
			return true
		}
	}
	return false
}

// GetCertificate returns the certificate for h's name (one of m's
// domains; without SNI the first domain's), or an error while none has
// been obtained yet.
func (m *Manager) GetCertificate(h *tls.ClientHelloInfo) (*tls.Certificate, error) {
	return m.cfg.GetCertificate(h)
}

// DefaultCertificate returns the first domain's certificate, for a client
// whose SNI names no certificate fulcrum has.
func (m *Manager) DefaultCertificate(h *tls.ClientHelloInfo) (*tls.Certificate, error) {
	hh := *h
	hh.ServerName = m.domains[0]
	return m.cfg.GetCertificate(&hh)
}

// ALPNConfig returns the handshake settings for h when it is a CA's
// tls-alpn-01 validation (ALPN acme-tls/1 only, for a name whose challenge
// is being solved), or nil.
func (m *Manager) ALPNConfig(h *tls.ClientHelloInfo) *tls.Config {
	if len(h.SupportedProtos) != 1 || h.SupportedProtos[0] != ALPNProto || h.ServerName == "" {
		return nil
	}
	// Only while a challenge for the name is being solved: certmagic logs
	// an error for every other such handshake, which anyone could send.
	if ch, ok := certmagic.GetACMEChallenge(strings.ToLower(strings.TrimSuffix(h.ServerName, "."))); !ok || ch.Type != "tls-alpn-01" {
		return nil
	}
	return m.alpn
}

// NotAfter is the expiry of each domain's newest certificate in memory
// (domain -> Unix seconds); domains without one are left out.
func (m *Manager) NotAfter() map[string]float64 {
	out := map[string]float64{}
	for _, d := range m.domains {
		for _, c := range m.cache.AllMatchingCertificates(d) {
			if c.Leaf == nil || !slices.Contains(c.Names, d) {
				continue
			}
			if t := float64(c.Leaf.NotAfter.Unix()); t > out[d] {
				out[d] = t
			}
		}
	}
	return out
}

// onEvent turns certmagic's events into fulcrum's metrics, event log and
// the Changed callback.
func (m *Manager) onEvent(_ context.Context, name string, data map[string]any) error {
	id, _ := data["identifier"].(string)
	renewal, _ := data["renewal"].(bool)
	what := "certificate"
	if renewal {
		what = "renewal"
	}
	switch name {
	case "cert_obtaining":
		m.event(fmt.Sprintf("acme: ordering a %s for %s", what, id))
	case "cert_obtained":
		if m.opt.Metrics != nil {
			m.opt.Metrics.ACMEOrder(metrics.ACMEOrderOK)
		}
		m.event(fmt.Sprintf("acme: %s for %s obtained", what, id))
		m.opt.Log.Info("ACME certificate obtained", "listener", m.opt.Listener, "domain", id, "renewal", renewal)
		m.changed()
	case "cert_failed":
		if m.opt.Metrics != nil {
			m.opt.Metrics.ACMEOrder(metrics.ACMEOrderError)
		}
		m.event(fmt.Sprintf("acme: %s for %s failed (retried with back-off): %v", what, id, data["error"]))
	case "cached_managed_cert":
		m.changed()
	}
	return nil
}

func (m *Manager) changed() {
	if m.opt.Changed != nil {
		m.opt.Changed()
	}
}

func (m *Manager) event(msg string) {
	if m.opt.Events != nil {
		m.opt.Events.Add(events.KindCertificate, "", "", "listener "+m.opt.Listener+": "+msg)
	}
}

// HTTPChallenge returns the key authorization to answer a CA's http-01
// request for path on host (the Host header), if a challenge for that
// name is being solved: any listener may answer any manager's challenge.
func HTTPChallenge(method, host, path string) (string, bool) {
	if method != "GET" || !strings.HasPrefix(path, ChallengePath) {
		return "", false
	}
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	ch, ok := certmagic.GetACMEChallenge(strings.ToLower(host))
	if !ok || ch.Type != "http-01" || ch.HTTP01ResourcePath() != path || !strings.EqualFold(ch.Identifier.Value, host) {
		return "", false
	}
	return ch.KeyAuthorization, true
}

// ChallengePath is where CAs ask for http-01 key authorizations.
const ChallengePath = "/.well-known/acme-challenge/"
