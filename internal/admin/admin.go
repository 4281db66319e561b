// Package admin serves the admin API: metrics, reload, backend state and a
// liveness probe. It never shares a listener with traffic.
package admin

import (
	"context"
	"crypto/subtle"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"fulcrum/internal/pool"
)

// Controller is what the admin API needs from the engine.
type Controller interface {
	// Reload re-reads the config; it returns a one-line summary, or an error
	// (the running config is then unchanged).
	Reload(ctx context.Context) (string, error)
	// Backends lists backend state.
	Backends() []pool.Status
}

// TokenSource is implemented by a Controller whose Reload can change the
// admin token: after a successful POST /admin/reload the server takes the
// token from AdminToken, as SIGHUP does in cmd/fulcrum, so a rotated token
// works at once whichever way the reload was triggered.
type TokenSource interface {
	AdminToken() string
}

// Server is the admin HTTP handler.
type Server struct {
	ctl   Controller
	log   *slog.Logger
	token atomic.Pointer[string]
	mux   *http.ServeMux

	dash      dashboard     // GET /: the page and its headers
	heartbeat time.Duration // of event streams
	stop      chan struct{} // closed by Close: event streams end
	closeOnce sync.Once
}

// New returns the admin handler. token may be empty (no authentication).
func New(ctl Controller, reg prometheus.Gatherer, token string, log *slog.Logger) *Server {
	s := &Server{ctl: ctl, log: log, mux: http.NewServeMux(), dash: newDashboard(), heartbeat: defaultHeartbeat, stop: make(chan struct{})}
	s.SetToken(token)
	s.mux.HandleFunc("GET /{$}", s.dashboard)
	s.mux.HandleFunc("GET /admin/stream", s.dashStream)
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: nil}))
	s.mux.HandleFunc("POST /admin/reload", s.reload)
	s.mux.HandleFunc("GET /admin/backends", s.backends)
	s.mux.HandleFunc("GET /admin/routes", s.routes)
	s.routeControl() // runtime backend control and events (control.go, events.go)
	s.mux.HandleFunc("GET /admin/config", s.config)
	// Profiles, for finding where time goes under load (behind the token).
	s.mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	s.mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	s.mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	s.mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
	})
	return s
}

// Close ends the event streams and dashboard streams being served (call it
// before shutting the admin listener down, which otherwise waits for them).
// The server keeps answering other requests.
func (s *Server) Close() { s.closeOnce.Do(func() { close(s.stop) }) }

// SetToken changes the bearer token (on reload).
func (s *Server) SetToken(t string) { s.token.Store(&t) }

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// The dashboard page itself needs no token; every call it makes does.
	api := strings.HasPrefix(r.URL.Path, "/admin/")
	if r.URL.Path != "/healthz" && r.URL.Path != "/" && !s.authorized(r.Header.Get("Authorization")) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="fulcrum"`)
		if api {
			writeError(w, http.StatusUnauthorized, "unauthorized: send Authorization: Bearer <admin token>")
			return
		}
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	if api {
		if _, pattern := s.mux.Handler(r); pattern == "" {
			// No route: the mux answers 404 or 405 (with Allow) in plain
			// text; the admin API answers every error in JSON.
			s.mux.ServeHTTP(&jsonError{ResponseWriter: w}, r)
			return
		}
	}
	s.mux.ServeHTTP(w, r)
}

// jsonError turns the mux's plain-text 404 and 405 into the admin API's
// JSON error form, keeping the status and headers such as Allow.
type jsonError struct {
	http.ResponseWriter
	wrote bool
}

func (j *jsonError) WriteHeader(code int) {
	if j.wrote {
		return
	}
	j.wrote = true
	h := j.ResponseWriter.Header()
	h.Del("Content-Length")
	msg := strings.ToLower(http.StatusText(code))
	if code == http.StatusMethodNotAllowed {
		msg += "; allowed: " + h.Get("Allow")
	}
	writeJSON(j.ResponseWriter, code, map[string]string{"error": msg})
}

// Write drops the mux's own text body.
func (j *jsonError) Write(b []byte) (int, error) {
	if !j.wrote {
		j.WriteHeader(http.StatusOK)
	}
	return len(b), nil
}

// authorized reports whether an Authorization header value carries the
// admin token (always true without a token).
func (s *Server) authorized(auth string) bool {
	tok := *s.token.Load()
	if tok == "" {
		return true
	}
	// The auth scheme is case-insensitive (RFC 9110 section 11.1).
	const scheme = "Bearer "
	ok := len(auth) >= len(scheme) && strings.EqualFold(auth[:len(scheme)], scheme)
	return ok && subtle.ConstantTimeCompare([]byte(auth[len(scheme):]), []byte(tok)) == 1
}

func (s *Server) reload(w http.ResponseWriter, r *http.Request) {
	dry, err := dryRun(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if dry {
		s.dryRun(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	summary, err := s.ctl.Reload(r.Context())
	if err != nil {
		s.log.Error("reload rejected; running configuration unchanged", "trigger", "POST /admin/reload", "err", err)
		w.WriteHeader(http.StatusBadRequest)
		w.Write([]byte("reload failed; running configuration unchanged:\n" + err.Error() + "\n"))
		return
	}
	if ts, ok := s.ctl.(TokenSource); ok {
		s.SetToken(ts.AdminToken())
	}
	w.Write([]byte(summary + "\n"))
}

func (s *Server) backends(w http.ResponseWriter, r *http.Request) {
	bs := s.ctl.Backends()
	if bs == nil {
		bs = []pool.Status{}
	}
	writeJSON(w, http.StatusOK, bs)
}
