package metrics

import "github.com/prometheus/client_golang/prometheus"

// TLS handshake results (fulcrum_tls_handshakes_total{result}).
const (
	HandshakeOK             = "ok"
	HandshakeNoCertificate  = "no_certificate"
	HandshakeBadClientHello = "bad_client_hello"
	HandshakeUnknownSNI     = "unknown_sni"
	HandshakeTimeout        = "timeout"
	HandshakeClientAuth     = "client_auth"
	HandshakeOther          = "other"
)

// tlsMetrics are the TLS listener series.
type tlsMetrics struct {
	handshakes *prometheus.CounterVec // fulcrum_tls_handshakes_total{listener, result}
	notAfter   *prometheus.GaugeVec   // fulcrum_tls_certificate_not_after_seconds{listener, name}
	// fulcrum_tls_certificate_reload_errors_total{listener}
	reloadFailed *prometheus.CounterVec
	acmeOrders   *prometheus.CounterVec // fulcrum_acme_orders_total{result}
}

// ACME order results (fulcrum_acme_orders_total{result}).
const (
	ACMEOrderOK    = "ok"
	ACMEOrderError = "error"
)

func newTLSMetrics() *tlsMetrics {
	t := &tlsMetrics{
		handshakes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fulcrum_tls_handshakes_total",
			Help: "TLS handshakes on TLS listeners, by listener and result (ok, no_certificate, bad_client_hello, unknown_sni, timeout, client_auth, other).",
		}, []string{"listener", labelResult}),
		notAfter: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "fulcrum_tls_certificate_not_after_seconds",
			Help: "Expiry (Unix time) of each certificate a TLS listener serves, by listener and certificate name (its first DNS name).",
		}, []string{"listener", "name"}),
		reloadFailed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fulcrum_tls_certificate_reload_errors_total",
			Help: "Certificate reloads (on reload or after a file change) that failed, by listener; the old certificates kept serving.",
		}, []string{"listener"}),
		acmeOrders: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fulcrum_acme_orders_total",
			Help: "ACME certificate orders (first issuance and renewal), by result (ok, error); a failed order is retried with back-off.",
		}, []string{labelResult}),
	}
	t.acmeOrders.WithLabelValues(ACMEOrderOK)
	t.acmeOrders.WithLabelValues(ACMEOrderError)
	return t
}

// ACMEOrder counts a finished ACME order with result (ACMEOrderOK or
// ACMEOrderError).
func (m *Metrics) ACMEOrder(result string) { m.tls.acmeOrders.WithLabelValues(result).Inc() }

// Handshakes returns the counter of listener's handshakes with result, to
// be looked up once per listener and result, not per handshake.
func (m *Metrics) Handshakes(listener, result string) prometheus.Counter {
	return m.tls.handshakes.WithLabelValues(listener, result)
}

// SetCertificates replaces listener's certificate expiry series with
// notAfter (name -> Unix seconds).
func (m *Metrics) SetCertificates(listener string, notAfter map[string]float64) {
	m.tls.notAfter.DeletePartialMatch(prometheus.Labels{"listener": listener})
	for name, t := range notAfter {
		m.tls.notAfter.WithLabelValues(listener, name).Set(t)
	}
}

// CertificateReloadFailed counts a failed certificate reload of listener
// (the old certificates kept serving).
func (m *Metrics) CertificateReloadFailed(listener string) {
	m.tls.reloadFailed.WithLabelValues(listener).Inc()
}
