package admin_test

import (
	"encoding/json"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"fulcrum/internal/admin"
	"fulcrum/internal/config"
	"fulcrum/internal/events"
	"fulcrum/internal/pool"
)

// poolCtl serves the runtime control of one real pool (not started: no
// health checks, nothing dialled) named "default".
type poolCtl struct {
	fakeCtl
	pool.Lookup
	p   *pool.Pool
	log *events.Log
}

func (c *poolCtl) Events() *events.Log { return c.log }

var _ admin.BackendControl = (*poolCtl)(nil)

func newPoolCtl(t testing.TB) *poolCtl {
	cfg := &config.Pool{
		Name: "default", Strategy: "weighted_round_robin",
		HealthCheck: config.HealthCheck{Type: "tcp", Interval: time.Hour, Timeout: time.Second, HealthyThreshold: 1, UnhealthyThreshold: 1},
		Backends:    []config.Backend{{URL: "http://127.0.0.1:1", Scheme: "http", Host: "127.0.0.1:1", Weight: 1}},
	}
	log := events.New(events.Capacity, nil)
	p := pool.New(cfg, time.Minute, nil, pool.Options{Logger: quiet, Events: log})
	t.Cleanup(p.Stop)
	for i := 0; i < 20; i++ {
		log.Add(events.KindAdmin, "default", "127.0.0.1:1", "seed")
	}
	c := &poolCtl{p: p, log: log}
	c.Lookup = func(name string) (*pool.Pool, error) {
		if name != "default" {
			return nil, pool.ErrNotFound
		}
		return p, nil
	}
	return c
}

// FuzzWeightBody: any body of PUT .../weight is answered 200 with the weight
// it asked for, or 400 with a JSON error; never anything else, and a
// refused body changes nothing.
func FuzzWeightBody(f *testing.F) {
	for _, s := range []string{`{"weight": 5}`, `{"weight": 0}`, `{"weight": 1000}`, `{"weight": 1001}`, `{"weight": -3}`,
		`{"weight": 1.5}`, `{"weight": "2"}`, `{}`, `[]`, `null`, `{"weight": 2, "x": 1}`, `{"weight": 2} {}`,
		`{"weight": 99999999999999999999}`, `{"Weight": 3}`, "", "{", `{"weight": 2}` + strings.Repeat(" ", 5000)} {
		f.Add(s)
	}
	ctl := newPoolCtl(f)
	h := admin.New(ctl, prometheus.NewRegistry(), "", quiet)
	f.Fuzz(func(t *testing.T, body string) {
		before := ctl.p.Statuses()[0].Weight
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("PUT", "/admin/pools/default/backends/127.0.0.1:1/weight", strings.NewReader(body))
		h.ServeHTTP(rec, req)
		var got map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
			t.Fatalf("%q: answer is not JSON: %v\n%s", body, err, rec.Body)
		}
		after := ctl.p.Statuses()[0].Weight
		switch rec.Code {
		case 200:
			var want struct{ Weight int }
			if json.Unmarshal([]byte(body), &want) != nil || want.Weight < 1 || want.Weight > 1000 || after != want.Weight {
				t.Fatalf("%q: 200 with weight %d", body, after)
			}
		case 400:
			if e, _ := got["error"].(string); e == "" || after != before {
				t.Fatalf("%q: 400 %v, weight %d -> %d", body, got, before, after)
			}
		default:
			t.Fatalf("%q: status %d %s", body, rec.Code, rec.Body)
		}
	})
}

// FuzzEventQuery: since, limit and wait of any value are answered 200 or
// 400 with a JSON error, never anything else; a 200 list honours them.
func FuzzEventQuery(f *testing.F) {
	for _, s := range [][3]string{{"0", "100", "1s"}, {"5", "3", "0"}, {"-1", "0", "-1s"}, {"x", "1001", "11m"},
		{"18446744073709551615", "1", "10m"}, {"18446744073709551616", "a", "1h"}, {" 7", "07", "1e3ms"}} {
		f.Add(s[0], s[1], s[2])
	}
	ctl := newPoolCtl(f)
	h := admin.New(ctl, prometheus.NewRegistry(), "", quiet)
	f.Fuzz(func(t *testing.T, since, limit, wait string) {
		q := url.Values{"since": {since}, "limit": {limit}}.Encode()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/admin/events?"+q, nil))
		switch rec.Code {
		case 200:
			var evs []events.Event
			if err := json.Unmarshal(rec.Body.Bytes(), &evs); err != nil {
				t.Fatalf("since=%q limit=%q: %v", since, limit, err)
			}
			for i := 1; i < len(evs); i++ {
				if evs[i].ID != evs[i-1].ID+1 {
					t.Fatalf("since=%q limit=%q: ids out of order", since, limit)
				}
			}
		case 400:
			var e struct{ Error string }
			if json.Unmarshal(rec.Body.Bytes(), &e) != nil || e.Error == "" {
				t.Fatalf("since=%q limit=%q: 400 without a JSON error: %s", since, limit, rec.Body)
			}
		default:
			t.Fatalf("since=%q limit=%q: status %d", since, limit, rec.Code)
		}
		// A drain with any wait: answered at once (nothing is in flight).
		rec = httptest.NewRecorder()
		target := "/admin/pools/default/backends/127.0.0.1:1/drain?" + url.Values{"wait": {wait}}.Encode()
		h.ServeHTTP(rec, httptest.NewRequest("POST", target, nil))
		if rec.Code != 200 && rec.Code != 400 {
			t.Fatalf("wait=%q: status %d %s", wait, rec.Code, rec.Body)
		}
		if d, err := time.ParseDuration(wait); rec.Code == 400 && err == nil && d >= 0 && d <= 10*time.Minute {
			t.Fatalf("wait=%q is valid but got 400 %s", wait, rec.Body)
		}
	})
}
