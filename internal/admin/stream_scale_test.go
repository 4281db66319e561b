package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"fulcrum/internal/pool"
	"fulcrum/internal/window"
)

// manyCtl serves pools × per backends whose traffic changes on every call
// to Backends (the worst case for updates: every row changes).
type manyCtl struct {
	bs   []pool.Status
	tick int
}

func newManyCtl(pools, per int) *manyCtl {
	c := &manyCtl{}
	for p := range pools {
		for b := range per {
			c.bs = append(c.bs, pool.Status{
				Pool: fmt.Sprintf("pool-%03d", p), URL: fmt.Sprintf("http://10.%d.%d.%d:8080", p/250, p%250, b+1),
				Weight: 1, Up: true, Healthy: true, Active: int64(b % 7),
				LastCheck: &pool.Check{OK: true, At: time.Now(), Info: "HTTP 200"},
			})
		}
	}
	return c
}

func (c *manyCtl) Reload(context.Context) (string, error) { return "", nil }

func (c *manyCtl) Backends() []pool.Status {
	c.tick++
	out := make([]pool.Status, len(c.bs))
	copy(out, c.bs)
	for i := range out {
		n := uint64(1000 + (i*37+c.tick*101)%5000)
		out[i].LastMinute = window.Stats{Requests: n, Errors: n / 97, Span: time.Minute,
			P50: time.Duration(900+i%300+c.tick) * time.Microsecond, P99: time.Duration(8000+i%900+c.tick*3) * time.Microsecond}
	}
	return out
}

// TestStreamSizeAt5000Backends bounds what one client receives with
// 100 pools × 50 backends: the snapshot, and an update in which every row
// changed.
func TestStreamSizeAt5000Backends(t *testing.T) {
	st := &streamState{ctl: newManyCtl(100, 50), now: time.Now}
	ev, snap := st.next(nil)
	if ev != "snapshot" {
		t.Fatalf("first message %q", ev)
	}
	snapLen := len(snap)
	ev, upd := st.next(nil)
	if ev != "update" {
		t.Fatalf("second message %q", ev)
	}
	t.Logf("100 pools × 50 backends: snapshot %d bytes, update with every row changed %d bytes", snapLen, len(upd))
	if snapLen > 800<<10 || len(upd) > 500<<10 {
		t.Fatalf("snapshot %d bytes, update %d bytes: over 800 KiB / 500 KiB", snapLen, len(upd))
	}
}

func BenchmarkStreamSnapshot5000(b *testing.B) {
	ctl := newManyCtl(100, 50)
	b.ReportAllocs()
	var n int
	for b.Loop() {
		st := &streamState{ctl: ctl, now: time.Now}
		_, data := st.next(nil)
		n = len(data)
	}
	b.ReportMetric(float64(n), "bytes/msg")
}

func BenchmarkStreamUpdate5000(b *testing.B) {
	ctl := newManyCtl(100, 50)
	st := &streamState{ctl: ctl, now: time.Now}
	st.next(nil)
	b.ReportAllocs()
	var n int
	for b.Loop() {
		_, data := st.next(nil)
		n = len(data)
	}
	b.ReportMetric(float64(n), "bytes/msg")
}

func TestAppendSig3(t *testing.T) {
	for v, want := range map[float64]string{
		0: "0", 1: "1", 2.345: "2.35", 12.34: "12.3", 123.4: "123", 999.4: "999", 1234.5: "1235",
		0.05: "0.05", 0.012345: "0.0123", 0.00001234: "1.23e-05",
	} {
		if got := string(appendSig3(nil, v)); got != want {
			t.Errorf("appendSig3(%v) = %s, want %s", v, got, want)
		}
	}
}

// FuzzAppendJSONString checks that every string is encoded as a JSON string
// that decodes to it (invalid UTF-8 as encoding/json replaces it).
func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "HTTP 200", `a"b\c`, "line\nbreak", "<&>", "é", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := appendJSONString([]byte("x"), s)
		var got string
		if err := json.Unmarshal(b[1:], &got); err != nil {
			t.Fatalf("%q encodes as %s: %v", s, b[1:], err)
		}
		want, _ := json.Marshal(s)
		var w string
		json.Unmarshal(want, &w)
		if got != w {
			t.Fatalf("%q round-trips as %q, encoding/json gives %q", s, got, w)
		}
	})
}
