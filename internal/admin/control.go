package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"fulcrum/internal/backend"
	"fulcrum/internal/pool"
)

// BackendControl is implemented by a Controller that changes backends at
// runtime: the drain, disable, enable and weight endpoints. Errors wrapping
// pool.ErrNotFound are answered 404, pool.ErrConflict 409, others 400.
type BackendControl interface {
	// SetAdminState drains, disables or enables the backend (host:port) of
	// the pool and returns its status once pickers see the change.
	SetAdminState(pool, backend string, s backend.AdminState) (pool.Status, error)
	// SetWeight sets the backend's runtime weight (1-1000).
	SetWeight(pool, backend string, weight int) (pool.Status, error)
	// WaitIdle blocks until the backend has no request in flight or ctx
	// ends, and returns its status and the requests still in flight.
	WaitIdle(ctx context.Context, pool, backend string) (pool.Status, int64, error)
}

// maxDrainWait bounds ?wait= of a drain.
const maxDrainWait = 10 * time.Minute

// maxBody bounds the body of PUT .../weight.
const maxBody = 4 << 10

// drainView is the answer of a drain: the backend's status and the
// requests still in flight on it.
type drainView struct {
	pool.Status
	InFlight int64 `json:"in_flight"`
}

// routeControl registers the runtime control endpoints.
func (s *Server) routeControl() {
	const base = "/admin/pools/{pool}/backends/{backend}/"
	s.mux.HandleFunc("POST "+base+"drain", s.drain)
	s.mux.HandleFunc("POST "+base+"disable", s.setState(backend.AdminDisabled))
	s.mux.HandleFunc("POST "+base+"enable", s.setState(backend.AdminReady))
	s.mux.HandleFunc("PUT "+base+"weight", s.weight)
	s.mux.HandleFunc("GET /admin/events", s.events)
}

// control returns the BackendControl, or answers 404 when there is none.
func (s *Server) control(w http.ResponseWriter) (BackendControl, bool) {
	bc, ok := s.ctl.(BackendControl)
	if !ok {
		writeError(w, http.StatusNotFound, "runtime backend control is not available")
	}
	return bc, ok
}

func (s *Server) setState(to backend.AdminState) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		bc, ok := s.control(w)
		if !ok {
			return
		}
		st, err := bc.SetAdminState(r.PathValue("pool"), r.PathValue("backend"), to)
		if err != nil {
			writeControlError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, st)
	}
}

// drain: POST .../drain[?wait=DURATION]. Without wait (or wait=0) it
// answers 200 at once; with wait, 200 once no request is in flight on the
// backend, or 202 with the count left when the wait ends first.
func (s *Server) drain(w http.ResponseWriter, r *http.Request) {
	bc, ok := s.control(w)
	if !ok {
		return
	}
	var wait time.Duration
	if q := r.URL.Query(); q.Has("wait") {
		v := q.Get("wait")
		d, err := time.ParseDuration(v)
		switch {
		case err != nil || d < 0:
			writeError(w, http.StatusBadRequest, fmt.Sprintf("wait: must be a duration like \"30s\" or \"2m\", got %q", v))
			return
		case d > maxDrainWait:
			writeError(w, http.StatusBadRequest, fmt.Sprintf("wait: at most %s, got %q", maxDrainWait, v))
			return
		}
		wait = d
	}
	poolName, host := r.PathValue("pool"), r.PathValue("backend")
	st, err := bc.SetAdminState(poolName, host, backend.AdminDrain)
	if err != nil {
		writeControlError(w, err)
		return
	}
	if wait == 0 {
		writeJSON(w, http.StatusOK, drainView{Status: st, InFlight: st.Active})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), wait)
	defer cancel()
	st, n, err := bc.WaitIdle(ctx, poolName, host)
	switch {
	case err != nil:
		writeControlError(w, err)
	case r.Context().Err() != nil:
		// The client went away; nobody reads an answer.
	case n > 0:
		writeJSON(w, http.StatusAccepted, drainView{Status: st, InFlight: n})
	default:
		writeJSON(w, http.StatusOK, drainView{Status: st})
	}
}

// weight: PUT .../weight with {"weight": N}.
func (s *Server) weight(w http.ResponseWriter, r *http.Request) {
	bc, ok := s.control(w)
	if !ok {
		return
	}
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		writeError(w, http.StatusBadRequest, "body: at most "+strconv.Itoa(maxBody)+` bytes, like {"weight": 5}`)
		return
	}
	var body struct {
		Weight *int `json:"weight"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		writeError(w, http.StatusBadRequest, `body: must be a JSON object like {"weight": 5}: `+err.Error())
		return
	}
	if len(bytes.TrimSpace(raw[dec.InputOffset():])) > 0 {
		writeError(w, http.StatusBadRequest, `body: must be one JSON object like {"weight": 5}, with nothing after it`)
		return
	}
	if body.Weight == nil {
		writeError(w, http.StatusBadRequest, `weight: required, e.g. {"weight": 5}`)
		return
	}
	if n := *body.Weight; n < pool.MinWeight || n > pool.MaxWeight {
		writeError(w, http.StatusBadRequest, "weight: must be "+strconv.Itoa(pool.MinWeight)+"-"+strconv.Itoa(pool.MaxWeight)+", got "+strconv.Itoa(n))
		return
	}
	st, err := bc.SetWeight(r.PathValue("pool"), r.PathValue("backend"), *body.Weight)
	if err != nil {
		writeControlError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// writeControlError answers err of a BackendControl call.
func writeControlError(w http.ResponseWriter, err error) {
	code := http.StatusBadRequest
	switch {
	case errors.Is(err, pool.ErrNotFound):
		code = http.StatusNotFound
	case errors.Is(err, pool.ErrConflict):
		code = http.StatusConflict
	}
	writeError(w, code, err.Error())
}

// writeError answers code with {"error": msg}.
func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

// writeJSON answers code with v as indented JSON.
func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false) // messages may say "<" or "&"; they are not for HTML
	enc.Encode(v)
}
