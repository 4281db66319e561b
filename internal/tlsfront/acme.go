package tlsfront

import (
	"crypto/tls"
	"errors"
	"reflect"

	"fulcrum/internal/acme"
	"fulcrum/internal/config"
)

// ErrNoCertificate fails a handshake for a name whose certificate ACME
// has not obtained yet (and no file certificate covers).
var ErrNoCertificate = errors.New("tlsfront: no certificate for this name yet (ACME order pending)")

// acmeState is the running ACME manager of a Front and what it was
// started with, to tell whether a reload changes it.
type acmeState struct {
	m   *acme.Manager
	key acmeKey
}

type acmeKey struct {
	spec              config.ACME
	tlsAddr, httpAddr string
}

// setACME starts, replaces or stops f's ACME manager for c. Called with
// f.mu held (or before f serves).
func (f *Front) setACME(c *Certs) {
	old := f.acme.Load()
	if c.spec.ACME == nil {
		if old != nil {
			f.acme.Store(nil)
			old.m.Stop()
		}
		return
	}
	key := acmeKey{spec: *c.spec.ACME, tlsAddr: c.TLSAddr, httpAddr: c.HTTPAddr}
	if old != nil && reflect.DeepEqual(old.key, key) {
		return
	}
	m, err := acme.Start(acme.Options{
		Listener: f.listener, Spec: c.spec.ACME, TLSAddr: c.TLSAddr, HTTPAddr: c.HTTPAddr,
		Log: f.log, Metrics: f.metrics, Events: f.events, Changed: f.refreshExpiry, RenewCheck: f.renewCheck,
	})
	if err != nil {
		// Load checked what it could; what is left (storage_dir cannot be
		// created) keeps the old manager, or none, and says so.
		f.failed(err)
		return
	}
	f.acme.Store(&acmeState{m: m, key: key})
	if old != nil {
		old.m.Stop()
	}
}

// getCertificate picks the certificate for a handshake: ACME's for its
// domains (a file certificate for the same name while ACME has none yet),
// else the files' by SNI, else the first file certificate, else the first
// ACME domain's.
func (f *Front) getCertificate(h *tls.ClientHelloInfo) (*tls.Certificate, error) {
	cs := f.cur.Load()
	st := f.acme.Load()
	if st != nil && st.m.Manages(h.ServerName) {
		if c, err := st.m.GetCertificate(h); err == nil && c != nil && c.Certificate != nil {
			return c, nil
		}
		if c := cs.pick(h); c != nil {
			return c, nil
		}
		return nil, ErrNoCertificate
	}
	if c := cs.pick(h); c != nil {
		return c, nil
	}
	if len(cs.all) > 0 {
		return cs.all[0], nil
	}
	if st != nil {
		if c, err := st.m.DefaultCertificate(h); err == nil && c != nil && c.Certificate != nil {
			return c, nil
		}
	}
	return nil, ErrNoCertificate
}

// refreshExpiry publishes the expiry of every certificate served: the
// files' and ACME's.
func (f *Front) refreshExpiry() {
	if f.metrics == nil {
		return
	}
	f.expiryMu.Lock()
	defer f.expiryMu.Unlock()
	na := map[string]float64{}
	for i, c := range f.cur.Load().all {
		n := label(c, i)
		if t := float64(c.Leaf.NotAfter.Unix()); na[n] == 0 || t < na[n] {
			na[n] = t
		}
	}
	if st := f.acme.Load(); st != nil {
		for n, t := range st.m.NotAfter() {
			na[n] = t
		}
	}
	f.metrics.SetCertificates(f.listener, na)
}
