package health

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"strings"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// NotServingError is the failure of a gRPC check whose answer was a status
// other than SERVING. Its text is "gRPC health NOT_SERVING" (or the status
// the server gave).
type NotServingError struct {
	Status healthpb.HealthCheckResponse_ServingStatus
}

func (e *NotServingError) Error() string { return "gRPC health " + e.Status.String() }

// grpcConns keeps one gRPC client connection per checked backend, so that a
// check every few seconds reuses its HTTP/2 connection like the HTTP checks
// reuse theirs. A connection whose check failed other than by an answer
// (refused, reset, timed out, TLS) is closed, and the next check dials
// afresh: gRPC's own reconnect back-off (up to two minutes) would otherwise
// decide when a recovered backend is seen again.
type grpcConns struct {
	dialer *net.Dialer
	base   *tls.Config // Options.TLSClientConfig: https targets without their own

	mu    sync.Mutex
	conns map[grpcKey]*grpc.ClientConn
}

// grpcKey is what a connection depends on: where it goes and how it is
// secured. (The authority is set per call.)
type grpcKey struct {
	host, scheme string
	tls          *tls.Config
}

// grpcKeyOf is the connection key of t.
func grpcKeyOf(t *Target) grpcKey {
	k := grpcKey{host: t.Host, scheme: t.Scheme}
	if t.Scheme == "https" {
		k.tls = t.TLS
	}
	return k
}

func newGRPCConns(d *net.Dialer, base *tls.Config) *grpcConns {
	return &grpcConns{dialer: d, base: base, conns: map[grpcKey]*grpc.ClientConn{}}
}

func (g *grpcConns) get(k grpcKey) (*grpc.ClientConn, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if cc := g.conns[k]; cc != nil {
		return cc, nil
	}
	creds := insecure.NewCredentials() // http:// backends: h2c with prior knowledge
	if k.scheme == "https" {
		cfg := k.tls
		if cfg == nil {
			cfg = g.base
		}
		if cfg != nil {
			cfg = cfg.Clone()
		} else {
			cfg = &tls.Config{} // system roots, server name from the target
		}
		creds = credentials.NewTLS(cfg)
	}
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithUserAgent(userAgent),
		grpc.WithNoProxy(), // checks go straight to the backend, never via $HTTPS_PROXY
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			return g.dialer.DialContext(ctx, "tcp", addr)
		}),
	}
	// passthrough: the address is dialled as given (resolved by the dialer at
	// each connect), like the other checks, not watched by gRPC's resolver.
	cc, err := grpc.NewClient("passthrough:///"+k.host, opts...)
	if err != nil {
		return nil, err
	}
	g.conns[k] = cc
	return cc, nil
}

// drop closes the connection of k if it is still cc.
func (g *grpcConns) drop(k grpcKey, cc *grpc.ClientConn) {
	g.mu.Lock()
	if g.conns[k] == cc {
		delete(g.conns, k)
	}
	g.mu.Unlock()
	cc.Close()
}

// retain closes the connections no target needs any more: those of removed
// targets, and those left by a reload that changed a target's scheme or TLS
// settings.
func (g *grpcConns) retain(targets []Target) {
	used := make(map[grpcKey]bool, len(targets))
	for i := range targets {
		used[grpcKeyOf(&targets[i])] = true
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for k, cc := range g.conns {
		if !used[k] {
			cc.Close()
			delete(g.conns, k)
		}
	}
}

// closeAll closes every connection (the checker stops).
func (g *grpcConns) closeAll() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for k, cc := range g.conns {
		cc.Close()
		delete(g.conns, k)
	}
}

// probeGRPC calls grpc.health.v1.Health/Check for s.service on t. SERVING
// passes; any other answer fails with *NotServingError; an RPC error fails
// with its gRPC code and message ("gRPC Unimplemented: unknown service ...").
func (p *prober) probeGRPC(ctx context.Context, s *settings, t *Target) (string, error) {
	k := grpcKeyOf(t)
	cc, err := p.grpc.get(k)
	if err != nil {
		return "", err
	}
	if len(s.metadata) > 0 {
		ctx = metadata.NewOutgoingContext(ctx, s.metadata)
	}
	var callOpts []grpc.CallOption
	if s.host != "" {
		// Per call: a connection-wide authority conflicts with the TLS
		// server name the pool sets. Over TLS, gRPC requires the
		// backend's certificate to cover it.
		callOpts = append(callOpts, grpc.CallAuthority(s.host))
	}
	resp, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{Service: s.service}, callOpts...)
	if err != nil {
		st, _ := status.FromError(err)
		if st.Code() != codes.Unimplemented && st.Code() != codes.NotFound {
			// Not an answer from a working server: dial afresh next time.
			p.grpc.drop(k, cc)
		}
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		msg := "gRPC " + st.Code().String() + ": " + st.Message()
		if strings.Contains(st.Message(), "server preface") {
			// What an HTTP/1.1 server's answer to the HTTP/2 preface reads as.
			msg += " (the backend does not speak HTTP/2 here: is it a gRPC server?)"
		}
		return "", errors.New(msg)
	}
	if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		return "", &NotServingError{Status: resp.GetStatus()}
	}
	return "gRPC health SERVING", nil
}
