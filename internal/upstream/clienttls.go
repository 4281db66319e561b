package upstream

import (
	"crypto/tls"
	"crypto/x509"
	"net"
)

// minSessions is the smallest session cache of a pool.
const minSessions = 64

// ClientTLS is a pool's client configuration for TLS to its backends: TLS
// 1.2 and up, ALPN http/1.1 (the only protocol spoken upstream), roots (nil
// = the system roots), serverName ("" = each backend's host, see
// ForBackend), insecure to accept any certificate, certs the client
// certificate for mTLS (none = none). Its session cache holds about
// sessions backends' sessions; every backend of the pool shares it, so a
// new connection resumes a session instead of a full handshake.
func ClientTLS(roots *x509.CertPool, serverName string, insecure bool, certs []tls.Certificate, sessions int) *tls.Config {
	return &tls.Config{
		RootCAs:            roots,
		ServerName:         serverName,
		InsecureSkipVerify: insecure,
		Certificates:       certs,
		MinVersion:         tls.VersionTLS12,
		NextProtos:         []string{"http/1.1"},
		ClientSessionCache: tls.NewLRUClientSessionCache(max(minSessions, sessions)),
	}
}

// ForBackend derives the configuration of the backend at addr (host:port)
// from its pool's conf (from ClientTLS): the backend's host as the server
// name unless conf sets one, and its own entries in the pool's session
// cache. crypto/tls keys the cache by server name alone, so two backends
// on one host, or under one server_name, would otherwise offer each other
// sessions that the other cannot resume. Call it once per backend and
// configuration, not per connection.
func ForBackend(conf *tls.Config, addr string) *tls.Config {
	c := conf.Clone()
	if c.ServerName == "" {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			host = addr
		}
		c.ServerName = host
	}
	if conf.ClientSessionCache != nil {
		c.ClientSessionCache = &backendSessions{prefix: addr + "\x00", c: conf.ClientSessionCache}
	}
	return c
}

// backendSessions is one backend's view of its pool's session cache.
type backendSessions struct {
	prefix string
	c      tls.ClientSessionCache
}

func (s *backendSessions) Get(key string) (*tls.ClientSessionState, bool) {
	return s.c.Get(s.prefix + key)
}

func (s *backendSessions) Put(key string, cs *tls.ClientSessionState) { s.c.Put(s.prefix+key, cs) }
