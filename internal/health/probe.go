package health

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"google.golang.org/grpc/metadata"

	"fulcrum/internal/config"
)

// userAgent is sent with every HTTP check unless cfg.Headers overrides it.
const userAgent = "fulcrum-health/1"

// maxBody is how much of a check response body is read. A body that fits is
// drained so the connection can be reused; a longer one closes it.
const maxBody = 4 << 10

// idleConnTimeout bounds how long the checker keeps its one idle connection
// per backend. Checks spaced further apart than this redial every time.
const idleConnTimeout = 2 * time.Minute

// StatusError is the failure of an HTTP check whose status is not in
// ExpectedStatus. Its text is "HTTP <code>".
type StatusError struct{ Code int }

func (e *StatusError) Error() string { return "HTTP " + strconv.Itoa(e.Code) }

// TimeoutError is the failure of a check that did not complete within the
// configured Timeout. Its text is "timeout after <Timeout>", and
// errors.Is(err, context.DeadlineExceeded) holds.
type TimeoutError struct{ After time.Duration }

func (e *TimeoutError) Error() string { return "timeout after " + e.After.String() }
func (e *TimeoutError) Unwrap() error { return context.DeadlineExceeded }

// errUnknownType fails checks of a type other than "tcp", "http" or "grpc" (the
// config loader rejects those; this only guards hand-built configs).
var errUnknownType = errors.New("unknown health check type")

// settings is a HealthCheck compiled for probing. Immutable; replaced as a
// whole on Update, so a check always sees one consistent config.
type settings struct {
	typ      string
	path     string
	interval time.Duration
	timeout  time.Duration
	rise     int
	fall     int
	host     string      // Host header override ("" = the backend's host:port)
	header   http.Header // User-Agent plus cfg.Headers
	expected []config.StatusRange
	service  string      // grpc: the service asked about
	metadata metadata.MD // grpc: cfg.Headers as request metadata
}

// Defaults for fields a hand-built config leaves at zero. The config loader
// always fills them; these only keep a zero value from spinning or hanging.
const (
	defaultInterval = 10 * time.Second
	defaultTimeout  = 2 * time.Second
)

func compile(cfg config.HealthCheck) *settings {
	s := &settings{
		typ:      cfg.Type,
		path:     cfg.Path,
		interval: cfg.Interval,
		timeout:  cfg.Timeout,
		rise:     max(cfg.HealthyThreshold, 1),
		fall:     max(cfg.UnhealthyThreshold, 1),
		host:     cfg.Host,
		header:   http.Header{"User-Agent": {userAgent}},
		expected: cfg.ExpectedStatus,
		service:  cfg.Service,
	}
	if s.path == "" {
		s.path = "/"
	}
	if s.interval <= 0 {
		s.interval = defaultInterval
	}
	if s.timeout <= 0 {
		s.timeout = defaultTimeout
	}
	if len(s.expected) == 0 {
		s.expected = []config.StatusRange{{Lo: 200, Hi: 399}}
	}
	for k, v := range cfg.Headers {
		if http.CanonicalHeaderKey(k) == "Host" {
			s.host = v // the loader refuses this; honour it for hand-built configs
			continue
		}
		s.header.Set(k, v)
	}
	if cfg.Type == "grpc" && len(cfg.Headers) > 0 {
		s.metadata = metadata.MD{}
		for k, v := range cfg.Headers {
			s.metadata.Append(k, v) // names lowercased, as HTTP/2 requires
		}
	}
	return s
}

func (s *settings) statusOK(code int) bool {
	for _, r := range s.expected {
		if code >= r.Lo && code <= r.Hi {
			return true
		}
	}
	return false
}

// prober runs single checks. One prober (and so one Transport) serves all
// targets of a Checker for its whole life.
type prober struct {
	dialer net.Dialer
	client *http.Client // checks of targets without their own TLS
	grpc   *grpcConns   // connections of grpc checks

	mu sync.Mutex // guards byTLS
	// byTLS has a client per Target.TLS in use: one per https backend of
	// a pool, replaced when a reload gives the pool new TLS settings.
	byTLS map[*tls.Config]*http.Client
}

func newProber(tlsCfg *tls.Config) *prober {
	p := &prober{dialer: net.Dialer{KeepAlive: 30 * time.Second}, byTLS: map[*tls.Config]*http.Client{}}
	p.client = p.newClient(tlsCfg)
	p.grpc = newGRPCConns(&p.dialer, tlsCfg)
	return p
}

// newClient is a check client whose transport uses tlsCfg (a copy; nil =
// system roots, server name from the target's host).
func (p *prober) newClient(tlsCfg *tls.Config) *http.Client {
	if tlsCfg != nil {
		tlsCfg = tlsCfg.Clone()
	}
	transport := &http.Transport{
		Proxy:       nil, // checks go straight to the backend, never via $HTTP_PROXY
		DialContext: p.dialer.DialContext,
		// nil = system roots.
		TLSClientConfig:        tlsCfg,
		DisableCompression:     true, // the body is discarded anyway
		MaxIdleConnsPerHost:    1,
		IdleConnTimeout:        idleConnTimeout,
		MaxResponseHeaderBytes: 64 << 10,
	}
	return &http.Client{
		Transport: transport,
		// A redirect is an answer: its status is judged against
		// ExpectedStatus, never followed.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// clientFor is the client that checks t.
func (p *prober) clientFor(t *Target) *http.Client {
	if t.TLS == nil || t.Scheme != "https" {
		return p.client
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	cl := p.byTLS[t.TLS]
	if cl == nil {
		cl = p.newClient(t.TLS)
		p.byTLS[t.TLS] = cl
	}
	return cl
}

// retain drops the clients of TLS configurations no target uses any more,
// closing their idle connections. A check still under way on one finishes.
func (p *prober) retain(targets []Target) {
	p.grpc.retain(targets)
	used := make(map[*tls.Config]bool, len(targets))
	for _, t := range targets {
		used[t.TLS] = true
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for conf, cl := range p.byTLS {
		if !used[conf] {
			cl.CloseIdleConnections()
			delete(p.byTLS, conf)
		}
	}
}

// probe runs one check of t under s with a hard deadline of s.timeout. It
// returns a short message for RecordCheck on success, or a failure error whose
// text is the message: *StatusError, *TimeoutError, or the dial/transport
// error (e.g. "dial tcp 10.0.0.1:80: connect: connection refused"). If ctx is
// cancelled (the checker stops) the error is ctx's.
func (p *prober) probe(ctx context.Context, s *settings, t *Target) (string, error) {
	cctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	var msg string
	var err error
	switch s.typ {
	case "tcp":
		msg, err = p.probeTCP(cctx, t)
	case "http":
		msg, err = p.probeHTTP(cctx, s, t)
	case "grpc":
		msg, err = p.probeGRPC(cctx, s, t)
	default:
		return "", errUnknownType
	}
	if err == nil {
		return msg, nil
	}
	return "", classify(ctx, cctx, err, s.timeout)
}

func (p *prober) probeTCP(ctx context.Context, t *Target) (string, error) {
	conn, err := p.dialer.DialContext(ctx, "tcp", t.Host)
	if err != nil {
		return "", err
	}
	_ = conn.Close()
	return "TCP connect ok", nil
}

func (p *prober) probeHTTP(ctx context.Context, s *settings, t *Target) (string, error) {
	scheme := t.Scheme
	if scheme == "" {
		scheme = "http"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://"+t.Host+s.path, nil)
	if err != nil {
		return "", err
	}
	req.Header = s.header.Clone()
	if s.host != "" {
		req.Host = s.host
	}
	resp, err := p.clientFor(t).Do(req)
	if err != nil {
		return "", err
	}
	// Read what fits in maxBody so a short body leaves the connection
	// reusable; a longer (or slow) one is cut off by Close.
	_, _ = io.CopyN(io.Discard, resp.Body, maxBody)
	_ = resp.Body.Close()
	if !s.statusOK(resp.StatusCode) {
		return "", &StatusError{Code: resp.StatusCode}
	}
	return "HTTP " + strconv.Itoa(resp.StatusCode), nil
}

// classify turns a probe failure into its reported form: a timeout of the
// check's own deadline becomes *TimeoutError; the url.Error wrapper (which
// repeats the method and URL) is peeled off.
func classify(parent, cctx context.Context, err error, timeout time.Duration) error {
	if parent.Err() != nil {
		return parent.Err()
	}
	var ne net.Error
	if errors.Is(cctx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) ||
		(errors.As(err, &ne) && ne.Timeout()) {
		return &TimeoutError{After: timeout}
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// close closes every connection, gRPC ones included (Stop).
func (p *prober) close() {
	p.closeIdle()
	p.grpc.closeAll()
}

// closeIdle closes idle HTTP connections. gRPC connections, which may be in
// use by a check under way, are closed by retain (removed targets) and close.
func (p *prober) closeIdle() {
	p.client.CloseIdleConnections()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, cl := range p.byTLS {
		cl.CloseIdleConnections()
	}
}
