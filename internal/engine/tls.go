package engine

import (
	"errors"
	"fmt"
	"net"
	"slices"

	"fulcrum/internal/config"
	"fulcrum/internal/proxy"
	"fulcrum/internal/tlsfront"
)

// certError is a listener's certificate load failure.
type certError struct {
	listen string // the listener's listen_addr
	err    error
}

func (e *certError) Error() string { return e.err.Error() }
func (e *certError) Unwrap() error { return e.err }

// loadCerts reads the certificates of every TLS listener of cfg, before
// anything is started or changed; certs[i] is nil for a plain listener.
// The error is a *certError.
func loadCerts(cfg *config.Config) ([]*tlsfront.Certs, error) {
	certs := make([]*tlsfront.Certs, len(cfg.Listeners))
	for i := range cfg.Listeners {
		lc := &cfg.Listeners[i]
		if lc.TLS == nil {
			continue
		}
		c, err := tlsfront.Load(lc.TLS)
		if err != nil {
			if cfg.Flat {
				err = fmt.Errorf("tls: %w", err)
			} else {
				err = fmt.Errorf("listeners[%d] (%s): tls: %w", i, lc.Name, err)
			}
			return nil, &certError{listen: lc.Listen, err: err}
		}
		c.TLSAddr, c.HTTPAddr = lc.Listen, plainAddr(cfg)
		certs[i] = c
	}
	return certs, nil
}

// CheckCertificates loads the certificates of cfg's TLS listeners and the
// files of its pools' TLS to backends, and reports the first that would
// stop start-up (for fulcrum validate).
func CheckCertificates(cfg *config.Config) error {
	_, err := loadCerts(cfg)
	if err == nil {
		_, err = loadPoolTLS(cfg, nil)
	}
	return err
}

// applyTLS gives listener l the certificates c of its configuration lc (nil:
// plain HTTP), keeping its Front (and so its file watcher) across reloads.
func (e *Engine) applyTLS(l *listener, lc *config.Listener, c *tlsfront.Certs) {
	switch {
	case c == nil:
		if l.tls != nil {
			l.tls.Front.Close()
			l.tls = nil
		}
	case l.tls == nil:
		f := tlsfront.New(lc.Name, c, tlsfront.Options{Log: e.log, Metrics: e.opt.Metrics, Events: e.opt.Events, RenewCheck: e.opt.ACMERenewCheck})
		l.tls = proxy.NewTLS(lc.Name, f, e.opt.Metrics)
	default:
		l.tls.Front.Install(c)
	}
}

// certsFailed records a reload's certificate error on the running listener
// at the failing one's address, which keeps its old certificates; a new
// or so far plain listener has none, and the reload's error says it all.
func (e *Engine) certsFailed(run *running, err error) {
	var ce *certError
	if !errors.As(err, &ce) {
		return
	}
	for _, l := range run.listeners {
		if l.listen == ce.listen && l.tls != nil {
			l.tls.Front.Failed(err)
		}
	}
}

// closeTLS stops the certificate watchers of ls.
func closeTLS(ls []*listener) {
	for _, l := range ls {
		if l.tls != nil {
			l.tls.Front.Close()
		}
	}
}

// plainAddr is where ACME's http-01 challenge is answered: a plain-HTTP
// listener's address, one on port 80 if there is one; "" if none.
func plainAddr(cfg *config.Config) string {
	addr := ""
	for _, l := range cfg.Listeners {
		if l.TLS != nil {
			continue
		}
		if _, port, err := net.SplitHostPort(l.Listen); err == nil && port == "80" {
			return l.Listen
		}
		if addr == "" {
			addr = l.Listen
		}
	}
	return addr
}

// hasHTTP01 reports whether any TLS listener of cfg obtains certificates
// with the http-01 challenge, which every plain listener then answers.
func hasHTTP01(cfg *config.Config) bool {
	for _, l := range cfg.Listeners {
		if l.TLS != nil && l.TLS.ACME != nil && slices.Contains(l.TLS.ACME.Challenges, "http-01") {
			return true
		}
	}
	return false
}
