package admin

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"fulcrum/internal/events"
)

// EventSource is implemented by a Controller that keeps an event log:
// GET /admin/events lists it or streams it.
type EventSource interface {
	Events() *events.Log
}

// defaultHeartbeat is how often an idle event stream gets a comment line,
// so that proxies and clients see the connection is alive.
const defaultHeartbeat = 15 * time.Second

// Limits of GET /admin/events?limit=.
const (
	defaultEventLimit = 100
	streamBatch       = 100 // events written per flush of a stream
)

// events: GET /admin/events?since=ID&limit=N answers a JSON array of the
// events with an ID above since (default 0), oldest first, at most limit
// (default 100, at most the ring's capacity). With Accept: text/event-stream
// it streams them instead (see stream).
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	src, ok := s.ctl.(EventSource)
	if !ok {
		writeError(w, http.StatusNotFound, "no event log")
		return
	}
	q := r.URL.Query()
	since, err := parseID("since", q.Get("since"))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if acceptsStream(r) {
		s.stream(w, r, src.Events(), q.Has("since"), since)
		return
	}
	limit := defaultEventLimit
	if v := q.Get("limit"); q.Has("limit") {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > events.Capacity {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("limit: must be a number from 1 to %d, got %q", events.Capacity, v))
			return
		}
		limit = n
	}
	writeJSON(w, http.StatusOK, src.Events().Since(since, limit))
}

// parseID parses an event ID ("" is 0).
func parseID(name, v string) (uint64, error) {
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: must be an event id (a number >= 0), got %q", name, v)
	}
	return n, nil
}

func acceptsStream(r *http.Request) bool {
	for _, v := range r.Header.Values("Accept") {
		if strings.Contains(strings.ToLower(v), "text/event-stream") {
			return true
		}
	}
	return false
}

// stream serves server-sent events: one "id: N" and one "data: <event
// JSON>" line per event, no event name (so EventSource.onmessage gets them
// all). It starts after the Last-Event-ID header's event (a reconnecting
// client), else after ?since=, else with the next new event. A client that
// is slower than the producers misses nothing still in the ring: it resumes
// from its last ID. A comment line every heartbeat keeps an idle stream
// alive. It ends when the client goes, the server closes or the admin
// token changes (checked on each event and heartbeat), as the dashboard's
// stream does.
func (s *Server) stream(w http.ResponseWriter, r *http.Request, log *events.Log, hasSince bool, since uint64) {
	last := log.LastID()
	if hasSince {
		last = since
	}
	if v := r.Header.Get("Last-Event-ID"); v != "" {
		id, err := parseID("Last-Event-ID", v)
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		last = id
	}
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if rc.Flush() != nil {
		return
	}
	hb := time.NewTicker(s.heartbeat)
	defer hb.Stop()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf) // one line per event, ending in "\n"
	enc.SetEscapeHTML(false)
	auth := r.Header.Get("Authorization")
	for {
		if !s.authorized(auth) {
			return // the admin token changed (reload): this stream's is void
		}
		changed := log.Changed() // before reading: an Add in between is not missed
		evs := log.Since(last, streamBatch)
		if len(evs) > 0 {
			buf.Reset()
			for _, e := range evs {
				fmt.Fprintf(&buf, "id: %d\ndata: ", e.ID)
				enc.Encode(e) // an Event always encodes
				buf.WriteByte('\n')
				last = e.ID
			}
			if _, err := w.Write(buf.Bytes()); err != nil || rc.Flush() != nil {
				return
			}
			if len(evs) == streamBatch {
				continue // more may be waiting
			}
		}
		select {
		case <-r.Context().Done():
			return
		case <-s.stop:
			return
		case <-changed:
		case <-hb.C:
			if _, err := w.Write([]byte(": heartbeat\n\n")); err != nil || rc.Flush() != nil {
				return
			}
		}
	}
}
