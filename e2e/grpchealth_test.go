package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	grpchealth "google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// grpcHealthBackend serves HTTP/1.1 requests (answering its name) and,
// on the same port, gRPC over h2c with the standard health service: a
// service with a REST API and a gRPC health endpoint.
type grpcHealthBackend struct {
	name, url string
	health    *grpchealth.Server
}

func startGRPCHealthBackend(t *testing.T, name string) *grpcHealthBackend {
	t.Helper()
	gs := grpc.NewServer()
	hs := grpchealth.NewServer()
	healthpb.RegisterHealthServer(gs, hs)
	var protos http.Protocols
	protos.SetHTTP1(true)
	protos.SetUnencryptedHTTP2(true)
	srv := &http.Server{Protocols: &protos, ReadHeaderTimeout: 5 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.ProtoMajor == 2 && strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc") {
				gs.ServeHTTP(w, r)
				return
			}
			w.Header().Set("X-Backend", name)
			io.WriteString(w, name)
		})}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close(); gs.Stop() })
	return &grpcHealthBackend{name: name, url: "http://" + l.Addr().String(), health: hs}
}

// TestGRPCHealthCheck: health_check type grpc calls
// grpc.health.v1.Health/Check on each backend; a backend that answers
// NOT_SERVING leaves the rotation and returns when it is SERVING again.
func TestGRPCHealthCheck(t *testing.T) {
	t.Parallel()
	a := startGRPCHealthBackend(t, "a")
	b := startGRPCHealthBackend(t, "b")
	b.health.SetServingStatus("shop.Cart", healthpb.HealthCheckResponse_SERVING)
	a.health.SetServingStatus("shop.Cart", healthpb.HealthCheckResponse_SERVING)
	f := StartFulcrum(t, fmt.Sprintf(`{"strategy": "round_robin", "backends": [%q, %q],
		"health_check": {"type": "grpc", "service": "shop.Cart", "interval": "300ms", "timeout": "300ms", "healthy_threshold": 1, "unhealthy_threshold": 2}}`,
		a.url, b.url))
	lastCheck := func(url string) string {
		_, _, body := adminDo(t, "GET", f.AdminURL("/admin/backends"), "")
		var st []struct {
			URL       string `json:"url"`
			LastCheck *struct {
				OK   bool   `json:"ok"`
				Info string `json:"info"`
			} `json:"last_check"`
		}
		if err := json.Unmarshal([]byte(body), &st); err != nil {
			t.Fatalf("/admin/backends: %v\n%s", err, body)
		}
		for _, s := range st {
			if s.URL == url && s.LastCheck != nil {
				return s.LastCheck.Info
			}
		}
		return ""
	}
	WaitFor(t, 10*time.Second, "a first gRPC check of b", func() bool { return lastCheck(b.url) == "gRPC health SERVING" })
	cl := coreClient(t)
	if cnt := coreCount(coreSeq(t, cl, f.URL("/"), 6)); cnt["a"] != 3 || cnt["b"] != 3 {
		t.Fatalf("both serving: %v, want a:3 b:3", cnt)
	}

	b.health.SetServingStatus("shop.Cart", healthpb.HealthCheckResponse_NOT_SERVING)
	WaitFor(t, 10*time.Second, "b marked down", func() bool { return !coreByURL(coreAdminBackends(t, f))[b.url].Up })
	if info := lastCheck(b.url); info != "gRPC health NOT_SERVING" {
		t.Errorf("b's last check: %q, want gRPC health NOT_SERVING", info)
	}
	host := strings.TrimPrefix(b.url, "http://")
	if n := coreScrape(t, f).val("loadbalancer_backend_errors_total", "pool", "default", "backend", host, "error_type", "health_check"); n < 2 {
		t.Errorf("b marked down after %v failed checks, want >= 2 (unhealthy_threshold)", n)
	}
	if cnt := coreCount(coreSeq(t, cl, f.URL("/"), 6)); cnt["a"] != 6 {
		t.Fatalf("b not serving: %v, want a:6", cnt)
	}
	// Another service's status does not matter.
	b.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	b.health.SetServingStatus("shop.Cart", healthpb.HealthCheckResponse_SERVING)
	WaitFor(t, 10*time.Second, "b marked up", func() bool { return coreByURL(coreAdminBackends(t, f))[b.url].Up })
	if cnt := coreCount(coreSeq(t, cl, f.URL("/"), 6)); cnt["a"] != 3 || cnt["b"] != 3 {
		t.Fatalf("b serving again: %v, want a:3 b:3", cnt)
	}
}
