package proxy

import (
	"crypto/tls"
	"errors"
	"net"
	"time"

	"fulcrum/internal/metrics"
	"fulcrum/internal/tlsfront"
)

// TLS is a TLS listener's handshake side: the certificates (kept across
// reloads by the engine) and the handshake counters.
type TLS struct {
	Front    *tlsfront.Front
	listener string
	// counters by result, looked up once
	counts map[string]interface{ Inc() }
}

// NewTLS returns the TLS side of listener over f.
func NewTLS(listener string, f *tlsfront.Front, m *metrics.Metrics) *TLS {
	t := &TLS{Front: f, listener: listener, counts: map[string]interface{ Inc() }{}}
	if m != nil {
		for _, r := range []string{metrics.HandshakeOK, metrics.HandshakeNoCertificate, metrics.HandshakeBadClientHello,
			metrics.HandshakeUnknownSNI, metrics.HandshakeTimeout, metrics.HandshakeClientAuth, metrics.HandshakeOther} {
			t.counts[r] = m.Handshakes(listener, r)
		}
	}
	return t
}

// wrapTLS turns an accepted connection into a TLS server connection. A bare
// socket enters the poller first: crypto/tls may read and write it from two
// goroutines (a tunnel), and its deadlines must work.
func wrapTLS(nc net.Conn, t *TLS) (net.Conn, error) {
	if ts, ok := nc.(tunnelSock); ok {
		if err := ts.Register(); err != nil {
			return nil, err
		}
	}
	return tls.Server(nc, t.Front.Config()), nil
}

// handshake completes a new TLS connection's handshake, bounded by
// read_header_timeout from the accept like a plain connection's first
// request head. Failures are counted, and logged only at debug level.
func (c *clientConn) handshake(t *TLS, deadline time.Time) bool {
	tc := c.nc.(*tls.Conn)
	tc.SetDeadline(deadline)
	err := tc.Handshake()
	r := tlsfront.Result(err)
	if ctr := t.counts[r]; ctr != nil {
		ctr.Inc()
	}
	if err != nil {
		var rh tls.RecordHeaderError
		if errors.As(err, &rh) && rh.Conn != nil && looksLikeHTTP(rh.RecordHeader[:]) {
			// Plain HTTP sent to the TLS port: say so in plain HTTP.
			rh.Conn.SetWriteDeadline(time.Now().Add(time.Second))
			rh.Conn.Write(plainOnTLSResponse)
		}
		c.srv.log.Debug("TLS handshake failed", "listener", t.listener, "peer", c.peer, "result", r, "err", err)
		return false
	}
	st := tc.ConnectionState()
	if st.NegotiatedProtocol == acmeTLSProto {
		// A CA's tls-alpn-01 validation: the handshake was the answer.
		return false
	}
	c.tlsVersion, c.tlsSNI = st.Version, st.ServerName
	tc.SetWriteDeadline(time.Time{})
	return true
}

// acmeTLSProto is the ALPN protocol of ACME's tls-alpn-01 validation.
const acmeTLSProto = "acme-tls/1"

var plainOnTLSResponse = []byte("HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 44\r\nConnection: close\r\n\r\nThis port speaks HTTPS; use https:// to it.\n")

// looksLikeHTTP reports whether a connection's first five bytes (where a
// TLS record header would be) start an HTTP request line.
func looksLikeHTTP(b []byte) bool {
	switch string(b) {
	case "GET /", "HEAD ", "POST ", "PUT /", "DELET", "OPTIO", "PATCH", "CONNE", "TRACE":
		return true
	}
	return false
}

// tlsVersionName is the access log's name of a TLS version.
func tlsVersionName(v uint16) string {
	switch v {
	case 0:
		return ""
	case tls.VersionTLS13:
		return "TLSv1.3"
	case tls.VersionTLS12:
		return "TLSv1.2"
	}
	return tls.VersionName(v)
}
