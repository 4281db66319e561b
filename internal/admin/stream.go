package admin

import (
	"bytes"
	"cmp"
	"encoding/json"
	"hash/fnv"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"fulcrum/internal/config"
	"fulcrum/internal/events"
	"fulcrum/internal/pool"
	"fulcrum/internal/window"
)

// streamEvery is the period of GET /admin/stream: it sends at most one
// message per period.
const streamEvery = time.Second

// Events per stream message: at most eventsPerMessage new ones, and the
// snapshotEvents before them in a snapshot.
const (
	eventsPerMessage = 100
	snapshotEvents   = 50
)

// rowFields names the columns of a backend row in GET /admin/stream, in
// order (a JSON array). The snapshot carries it, so a client reads rows by
// name.
const rowFields = `["state","admin_state","weight","active","rps","error_rate","p50_ms","p99_ms","down_reason","check"]`

// streamState is one client's view: what it was last sent, so that the
// next message carries only what changed.
type streamState struct {
	sig       uint64           // structure (pools, backends in order) of the last snapshot
	listeners *config.Listener // first listener of the last snapshot's config (its identity)
	rows      [][]byte         // last row sent per backend, in snapshot order
	lastEvent uint64           // ID of the newest event sent
	buf       bytes.Buffer     // the message being built
	row       []byte           // scratch for one row
	idx       []byte           // scratch for a row's indices
	log       *events.Log      // the event log, nil without one
	now       func() time.Time // the clock
	ctl       Controller       // where the state comes from
}

// structure hashes the pools and backends in order: a change (a reload
// adding or removing one) needs a new snapshot.
func structure(bs []pool.Status) uint64 {
	h := fnv.New64a()
	for i := range bs {
		h.Write([]byte(bs[i].Pool))
		h.Write([]byte{0})
		h.Write([]byte(bs[i].URL))
		h.Write([]byte{0})
	}
	return h.Sum64()
}

// next builds the message to send now: a snapshot when the client has none
// or the structure changed, else an update with the rows that changed and
// the new events. It returns "" (no message) when nothing changed.
func (st *streamState) next(ls []config.Listener) (event string, data []byte) {
	bs := st.ctl.Backends()
	sig := structure(bs)
	var first *config.Listener
	if len(ls) > 0 {
		first = &ls[0]
	}
	now := st.now().UTC()
	st.buf.Reset()
	b := &st.buf
	if st.rows == nil || sig != st.sig || first != st.listeners {
		st.sig, st.listeners = sig, first
		st.rows = make([][]byte, len(bs))
		b.WriteString(`{"time":`)
		bufJSON(b, now)
		b.WriteString(`,"listeners":`)
		bufJSON(b, viewRoutes(ls))
		b.WriteString(`,"fields":`)
		b.WriteString(rowFields)
		b.WriteString(`,"pools":[`)
		pi := -1
		for i := range bs {
			s := &bs[i]
			if i == 0 || s.Pool != bs[i-1].Pool {
				if pi++; pi > 0 {
					b.WriteString(`]},`)
				}
				b.WriteString(`{"name":`)
				bufJSON(b, s.Pool)
				b.WriteString(`,"backends":[`)
			} else {
				b.WriteByte(',')
			}
			host := s.Backend
			b.WriteString(`{"backend":`)
			b.Write(appendJSONString(st.row[:0], host))
			if len(s.URL) != len("http://")+len(host) || !strings.HasPrefix(s.URL, "http://") {
				b.WriteString(`,"url":`)
				b.Write(appendJSONString(st.row[:0], s.URL))
			}
			st.row = appendRow(st.row[:0], s)
			st.rows[i] = append(st.rows[i][:0], st.row...)
			b.WriteString(`,"row":`)
			b.Write(st.row)
			b.WriteByte('}')
		}
		if pi >= 0 {
			b.WriteString(`]}`)
		}
		b.WriteString(`],"events":`)
		b.Write(st.newEvents(true))
		b.WriteByte('}')
		return "snapshot", b.Bytes()
	}
	b.WriteString(`{"time":`)
	bufJSON(b, now)
	b.WriteString(`,"rows":[`)
	n := 0
	pi, bi := -1, 0
	for i := range bs {
		s := &bs[i]
		if i == 0 || s.Pool != bs[i-1].Pool {
			pi, bi = pi+1, 0
		} else {
			bi++
		}
		st.row = appendRow(st.row[:0], s)
		if bytes.Equal(st.row, st.rows[i]) {
			continue
		}
		st.rows[i] = append(st.rows[i][:0], st.row...)
		if n++; n > 1 {
			b.WriteByte(',')
		}
		// [pool index, backend index, fields...]
		st.idx = append(st.idx[:0], '[')
		st.idx = strconv.AppendInt(st.idx, int64(pi), 10)
		st.idx = append(st.idx, ',')
		st.idx = strconv.AppendInt(st.idx, int64(bi), 10)
		st.idx = append(st.idx, ',')
		b.Write(st.idx)
		b.Write(st.row[1:])
	}
	b.WriteString(`],"events":`)
	evs := st.newEvents(false)
	b.Write(evs)
	b.WriteByte('}')
	if n == 0 && len(evs) <= 2 {
		return "", nil
	}
	return "update", b.Bytes()
}

// newEvents returns, as a JSON array, the events after the last one sent
// (at most eventsPerMessage; the rest follow in the next messages). A
// snapshot also carries up to snapshotEvents earlier ones, so that a page
// starts with some history.
func (st *streamState) newEvents(snapshot bool) []byte {
	if st.log == nil {
		return []byte("[]")
	}
	if snapshot {
		last := st.log.LastID()
		st.lastEvent = last - min(last, snapshotEvents)
	}
	evs := st.log.Since(st.lastEvent, eventsPerMessage)
	if len(evs) == 0 {
		return []byte("[]")
	}
	st.lastEvent = evs[len(evs)-1].ID
	b, _ := json.Marshal(evs) // an Event always encodes
	return b
}

// bufJSON encodes v into b without a trailing newline. Its values (strings,
// times, the route views) always encode.
func bufJSON(b *bytes.Buffer, v any) {
	enc, _ := json.Marshal(v)
	b.Write(enc)
}

// appendRow appends the JSON array of one backend's fields (rowFields).
// Rates and latencies keep three significant digits, so a row changes only
// when a change shows.
func appendRow(b []byte, s *pool.Status) []byte {
	state := "up"
	switch {
	case !s.Healthy:
		state = "down"
	case s.Ejected:
		state = "ejected"
	case !s.Up:
		state = "down"
	}
	b = append(b, `["`...)
	b = append(b, state...)
	b = append(b, `","`...)
	b = append(b, cmp.Or(s.AdminState, "ready")...)
	b = append(b, `",`...)
	b = strconv.AppendInt(b, int64(s.Weight), 10)
	b = append(b, ',')
	b = strconv.AppendInt(b, s.Active, 10)
	lm := &s.LastMinute
	for _, v := range [...]float64{lm.RPS(), lm.ErrorRate(), window.Millis(lm.P50), window.Millis(lm.P99)} {
		b = append(b, ',')
		b = appendSig3(b, v)
	}
	b = append(b, ',')
	b = appendJSONString(b, downReason(s))
	b = append(b, ',')
	check := ""
	if s.LastCheck != nil {
		check = s.LastCheck.Info
		if !s.LastCheck.OK && check == "" {
			check = "failed"
		}
	}
	b = appendJSONString(b, check)
	return append(b, ']')
}

// downReason says why a backend is out, "" while it is up.
func downReason(s *pool.Status) string {
	if s.DownReason != nil {
		return *s.DownReason
	}
	return ""
}

// appendSig3 appends v rounded to three significant digits (whole numbers
// from 1000 on; a JSON number either way, in exponent form below 1e-4).
func appendSig3(b []byte, v float64) []byte {
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return append(b, '0')
	case v >= 1000:
		return strconv.AppendInt(b, int64(math.Round(v)), 10)
	}
	return strconv.AppendFloat(b, v, 'g', 3, 64)
}

// appendJSONString appends s as a JSON string: quoted as it is when it
// needs no escaping (the usual case), else by encoding/json.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x80 || c == '<' || c == '>' || c == '&' {
			enc, _ := json.Marshal(s)
			return append(b, enc...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// dashStream serves GET /admin/stream (the dashboard's feed): Server-Sent Events with a snapshot of
// the listeners, routes, pools and backends, then at most once per
// streamEvery an update with the rows that changed and the new events. It
// ends when the client goes, when the server closes its streams, or when
// the token it was opened with is no longer the admin token.
func (s *Server) dashStream(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming is not supported by this connection", http.StatusInternalServerError)
		return
	}
	auth := r.Header.Get("Authorization")
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	fl.Flush()
	st := &streamState{ctl: s.ctl, now: time.Now}
	if es, ok := s.ctl.(EventSource); ok {
		st.log = es.Events()
	}
	routes := func() []config.Listener {
		if rs, ok := s.ctl.(RouteSource); ok {
			return rs.Listeners()
		}
		return nil
	}
	tick := time.NewTicker(streamEvery)
	defer tick.Stop()
	last := time.Now()
	for {
		if event, data := st.next(routes()); data != nil {
			if writeEvent(w, event, data) != nil {
				return
			}
			fl.Flush()
			last = time.Now()
		} else if time.Since(last) >= s.heartbeat {
			if _, err := w.Write([]byte(": keep-alive\n\n")); err != nil {
				return
			}
			fl.Flush()
			last = time.Now()
		}
		select {
		case <-r.Context().Done():
			return
		case <-s.stop:
			return
		case <-tick.C:
		}
		if !s.authorized(auth) {
			return
		}
	}
}

// writeEvent writes one SSE message. data is JSON, so it holds no newline.
func writeEvent(w http.ResponseWriter, event string, data []byte) error {
	if _, err := w.Write([]byte("event: " + event + "\ndata: ")); err != nil {
		return err
	}
	if _, err := w.Write(data); err != nil {
		return err
	}
	_, err := w.Write([]byte("\n\n"))
	return err
}
