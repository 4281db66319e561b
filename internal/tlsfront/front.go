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
}

// Load reads and checks spec's files. An error names the file.
func Load(spec *config.TLS) (*Certs, error) {
	cs, err := load(spec, time.Now())
	if err != nil {
		return nil, err
	}
	return &Certs{cs: cs, spec: spec}, nil
}

// New starts serving c for listener, and watches its files.
// ev (may be nil) receives a certificate event at every load and failure.
func New(listener string, c *Certs, log *slog.Logger, m *metrics.Metrics, ev *events.Log) *Front {
	f := &Front{listener: listener, log: log, metrics: m, events: ev, spec: c.spec, stop: make(chan struct{})}
	f.install(c.cs, "loaded at start")
	f.conf = &tls.Config{GetConfigForClient: f.configFor}
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
}

// Failed records that loading the certificates for a reload failed; the
// old ones keep serving.
func (f *Front) Failed(err error) { f.failed(err) }

// Config is the tls.Config to serve connections with.
func (f *Front) Config() *tls.Config { return f.conf }

func (f *Front) configFor(h *tls.ClientHelloInfo) (*tls.Config, error) {
	cs := f.cur.Load()
	if cs.strict && cs.pick(h) == nil {
		return cs.refuse, nil
	}
	return cs.conf, nil
}

func (f *Front) install(cs *certSet, why string) {
	for _, w := range cs.warnings {
		f.log.Warn(w, "listener", f.listener)
		f.event(w)
	}
	f.event(fmt.Sprintf("%d certificates %s: %s", len(cs.all), why, cs.summary()))
	f.cur.Store(cs)
	if f.metrics != nil {
		na := map[string]float64{}
		for i, c := range cs.all {
			n := label(c, i)
			if t := float64(c.Leaf.NotAfter.Unix()); na[n] == 0 || t < na[n] {
				na[n] = t
			}
		}
		f.metrics.SetCertificates(f.listener, na)
	}
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

// Close stops the file watcher.
func (f *Front) Close() { f.stopOnce.Do(func() { close(f.stop) }) }

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
