package tlsfront

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"fulcrum/internal/acme"
	"fulcrum/internal/config"
	"fulcrum/internal/events"
	"fulcrum/internal/metrics"
)

// WatchInterval is how often certificate files are checked for changes.
const WatchInterval = 5 * time.Second

// Front is one TLS listener's certificates and handshake policy. Its
// Config is given to tls.Server for every connection; certificates are
// swapped underneath it without touching open connections.
type Front struct {
	listener string
	log      *slog.Logger
	metrics  *metrics.Metrics
	events   *events.Log

	mu   sync.Mutex // serialises Update and the watcher
	spec *config.TLS
	cur  atomic.Pointer[certSet]
	conf *tls.Config
	acme atomic.Pointer[acmeState] // nil: no acme block
	// expiryMu serialises publishing the expiry gauges (a reload and an
	// ACME renewal may do it at once).
	expiryMu sync.Mutex
	// renewCheck overrides how often ACME certificates are checked for
	// renewal (tests); 0 = acme.RenewCheckInterval.
	renewCheck time.Duration

	// reloadErrors counts certificate loads that failed after start-up
	// (the old certificates kept serving).
	reloadErrors atomic.Int64
	stop         chan struct{}
	stopOnce     sync.Once
}

// Certs are a listener's certificates, loaded and checked but not yet
// serving (Load, then New or Install): a reload loads every listener's
// before it changes anything.
type Certs struct {
	cs   *certSet
	spec *config.TLS
	// TLSAddr is the listener's address and HTTPAddr a plain-HTTP
	// listener's ("" if none): where ACME challenges are answered.
	TLSAddr, HTTPAddr string
}

// Load reads and checks spec's files (and the acme block's ca_file and
// storage_dir). An error names the file. Nothing is started.
func Load(spec *config.TLS) (*Certs, error) {
	cs, err := load(spec, time.Now())
	if err != nil {
		return nil, err
	}
	if spec.ACME != nil {
		if err := acme.Check(spec.ACME); err != nil {
			return nil, err
		}
	}
	return &Certs{cs: cs, spec: spec}, nil
}

// Options are a Front's optional settings.
type Options struct {
	Log     *slog.Logger
	Metrics *metrics.Metrics // may be nil
	Events  *events.Log      // may be nil: certificate events at every load and failure
	// RenewCheck overrides how often ACME certificates are checked for
	// renewal (tests); 0 = acme.RenewCheckInterval.
	RenewCheck time.Duration
}

// New starts serving c for listener, watches its files and, with an acme
// block, starts obtaining its certificates.
func New(listener string, c *Certs, opt Options) *Front {
	f := &Front{listener: listener, log: opt.Log, metrics: opt.Metrics, events: opt.Events,
		renewCheck: opt.RenewCheck, spec: c.spec, stop: make(chan struct{})}
	f.install(c.cs, "loaded at start")
	f.conf = &tls.Config{GetConfigForClient: f.configFor}
	f.setACME(c)
	go f.watch()
	return f
}

// Install swaps in c (a reload): new handshakes use it, open connections
// keep what they negotiated.
func (f *Front) Install(c *Certs) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.spec = c.spec
	f.install(c.cs, "reloaded")
	f.setACME(c)
}

// Failed records that loading the certificates for a reload failed; the
// old ones keep serving.
func (f *Front) Failed(err error) { f.failed(err) }

// Config is the tls.Config to serve connections with.
func (f *Front) Config() *tls.Config { return f.conf }

func (f *Front) configFor(h *tls.ClientHelloInfo) (*tls.Config, error) {
	cs := f.cur.Load()
	st := f.acme.Load()
	if st != nil {
		if c := st.m.ALPNConfig(h); c != nil {
			return c, nil
		}
	}
	if cs.strict && cs.pick(h) == nil && (st == nil || !st.m.Manages(h.ServerName)) {
		return cs.refuse, nil
	}
	return cs.conf, nil
}

func (f *Front) install(cs *certSet, why string) {
	for _, w := range cs.warnings {
		f.log.Warn(w, "listener", f.listener)
		f.event(w)
	}
	if len(cs.all) > 0 {
		f.event(fmt.Sprintf("%s %s: %s", plural(len(cs.all), "certificate"), why, cs.summary()))
	}
	cs.conf.GetCertificate = f.getCertificate
	f.cur.Store(cs)
	f.refreshExpiry()
}

// plural is "1 certificate", "2 certificates".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// event records msg, prefixed with the listener, in the event log.
func (f *Front) event(msg string) {
	if f.events != nil {
		f.events.Add(events.KindCertificate, "", "", "listener "+f.listener+": "+msg)
	}
}

func (f *Front) failed(err error) {
	f.event("certificate load failed, the old certificates keep serving: " + err.Error())
	f.reloadErrors.Add(1)
	if f.metrics != nil {
		f.metrics.CertificateReloadFailed(f.listener)
	}
	f.log.Error("certificate reload failed; the old certificates keep serving", "listener", f.listener, "err", err)
}

// ReloadErrors is the number of failed certificate loads since start-up.
func (f *Front) ReloadErrors() int64 { return f.reloadErrors.Load() }

// Close stops the file watcher and ACME.
func (f *Front) Close() {
	f.stopOnce.Do(func() {
		close(f.stop)
		f.mu.Lock()
		if st := f.acme.Swap(nil); st != nil {
			st.m.Stop()
		}
		f.mu.Unlock()
	})
}

// watch re-reads the files when one of them changes on disk (certbot and
// cert-manager replace them in place).
func (f *Front) watch() {
	t := time.NewTicker(WatchInterval)
	defer t.Stop()
	var lastFailed []stamp
	for {
		select {
		case <-f.stop:
			return
		case <-t.C:
		}
		f.mu.Lock()
		cs := f.cur.Load()
		now := make([]stamp, len(cs.stamps))
		for i, s := range cs.stamps {
			now[i] = stampOf(s.name)
		}
		if !slices.Equal(now, cs.stamps) && !slices.Equal(now, lastFailed) {
			if next, err := load(f.spec, time.Now()); err != nil {
				// Certificate and key are often written one after the
				// other: report a failure once per state of the files.
				lastFailed = now
				f.failed(err)
			} else {
				lastFailed = nil
				f.install(next, "reloaded after a file change")
				f.log.Info("certificates reloaded after a file change", "listener", f.listener)
			}
		}
		f.mu.Unlock()
	}
}

// Result classifies a handshake error for fulcrum_tls_handshakes_total.
func Result(err error) string {
	if err == nil {
		return metrics.HandshakeOK
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return metrics.HandshakeTimeout
	}
	var rh tls.RecordHeaderError
	if errors.As(err, &rh) {
		return metrics.HandshakeBadClientHello
	}
	if errors.Is(err, ErrNoCertificate) {
		return metrics.HandshakeNoCertificate
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "no certificates configured"):
		return metrics.HandshakeUnknownSNI
	case strings.Contains(msg, "client didn't provide a certificate"),
		strings.Contains(msg, "failed to verify certificate"),
		strings.Contains(msg, "client certificate"):
		return metrics.HandshakeClientAuth
	case strings.Contains(msg, "client offered only unsupported versions"),
		strings.Contains(msg, "no cipher suite supported"),
		strings.Contains(msg, "no ECDHE curve supported"),
		strings.Contains(msg, "no mutually supported"),
		strings.Contains(msg, "unexpected message"),
		strings.Contains(msg, "ClientHello"),
		strings.Contains(msg, "client requested unsupported application protocols"):
		return metrics.HandshakeBadClientHello
	}
	return metrics.HandshakeOther
}
