package pool

import (
	"context"
	"testing"
	"time"

	"fulcrum/internal/config"
	"fulcrum/internal/testutil"
)

// TestReloadKeepsStateAndDrainsRemoved reloads A,B,C into A,B,D while a
// request is in flight on C: A and B keep their State (counters, health
// verdict) and connections, D starts fresh, C gets no new picks from the new
// snapshot, its in-flight request still releases cleanly on the old member,
// and its connection is closed (not pooled) when that request returns it.
func TestReloadKeepsStateAndDrainsRemoved(t *testing.T) {
	addrC := listener(t)
	hosts := hostsN(2)
	a, b, d := hosts[0], hosts[1], "127.0.0.1:9"
	p, _ := testPool(t, testCfg([]string{a, b, addrC}, func(c *config.Pool) { c.PanicThreshold = 0 }), nil)

	stA, stB := member(p, 0).State, member(p, 1).State
	stA.Acquire()
	stA.Release(false)
	setHealth(p, 1, false) // B is down before the reload
	connsA := member(p, 0).Conns

	// A request in flight on C, holding an upstream connection.
	oldSnap := p.Snapshot()
	memC := oldSnap.Members[2]
	if !memC.State.TryAcquire(0) {
		t.Fatal("TryAcquire failed")
	}
	uc, err := memC.Conns.Get(context.Background())
	if err != nil {
		t.Fatal(err)
	}

	p.Update(testCfg([]string{a, b, d}, func(c *config.Pool) { c.PanicThreshold = 0 }), time.Minute, nil)

	snap := p.Snapshot()
	if len(snap.Members) != 3 || snap.Members[2].Backend.Host != d {
		t.Fatalf("members after reload: %v", usableHosts(snap, time.Now()))
	}
	if snap.Members[0].State != stA || snap.Members[1].State != stB {
		t.Fatal("kept backends lost their State")
	}
	if stA.Requests() != 1 {
		t.Fatalf("A's request counter = %d after reload, want 1", stA.Requests())
	}
	if snap.Members[1].State.Healthy() || snap.Usable != 2 {
		t.Fatalf("B's down verdict lost: healthy=%v usable=%d", snap.Members[1].State.Healthy(), snap.Usable)
	}
	if snap.Members[0].Conns != connsA {
		t.Fatal("A's connection pool was replaced although its settings did not change")
	}
	if snap.Members[2].State == memC.State {
		t.Fatal("D reuses C's state")
	}
	got := picks(t, p, 300)
	if got[addrC] != 0 || got[b] != 0 || got[a] != 150 || got[d] != 150 {
		t.Fatalf("picks after reload = %v, want only A and D, evenly", got)
	}

	// The in-flight request on C ends: Release works on the old member.
	p.Released()
	memC.State.Release(false)
	if memC.State.Inflight() != 0 {
		t.Fatalf("C in flight = %d after release", memC.State.Inflight())
	}
	memC.Conns.Put(uc)
	if memC.Conns.Idle() != 0 {
		t.Fatal("a removed backend's connection went back to the idle pool")
	}
	// The request that loaded the old snapshot still resolves C.
	if oldSnap.Member(memC.Backend) != memC {
		t.Fatal("old snapshot no longer resolves the removed backend")
	}

	// Statuses list only the new set.
	st := p.Statuses()
	if len(st) != 3 || st[2].URL != "http://"+d || st[1].Up || !st[0].Up {
		t.Fatalf("Statuses after reload = %+v", st)
	}
}

// TestReloadNewConnectionSettings keeps a backend's State when only the
// connection settings change, but renews its connection pool (closing the
// old one).
func TestReloadNewConnectionSettings(t *testing.T) {
	addr := listener(t)
	p, _ := testPool(t, testCfg([]string{addr}, nil), nil)
	old := member(p, 0)
	uc, err := old.Conns.Get(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	p.Update(testCfg([]string{addr}, func(c *config.Pool) { c.ConnectTimeout = 2 * time.Second }), time.Minute, nil)
	now := member(p, 0)
	if now.State != old.State {
		t.Fatal("State not kept across a connect_timeout change")
	}
	if now.Conns == old.Conns {
		t.Fatal("connection pool not renewed on a connect_timeout change")
	}
	old.Conns.Put(uc)
	if old.Conns.Idle() != 0 {
		t.Fatal("the retired connection pool took a connection back")
	}
}

// TestReloadAddedBackendChecked starts the checker on the fake clock and
// checks that a backend added by a reload gets active checks (and one removed
// stops getting them).
func TestReloadAddedBackendChecked(t *testing.T) {
	up, dead := listener(t), testutil.ClosedAddr(t)
	p, clk := testPool(t, testCfg([]string{up}, func(c *config.Pool) { c.PanicThreshold = 0 }), nil)
	p.Start(t.Context())
	p.Update(testCfg([]string{up, dead}, func(c *config.Pool) { c.PanicThreshold = 0 }), time.Minute, nil)
	stDead := member(p, 1).State
	if !stDead.Healthy() {
		t.Fatal("a new backend must count as up until its first check")
	}
	deadline := time.Now().Add(10 * time.Second)
	for stDead.Healthy() || p.Snapshot().Usable != 1 {
		if time.Now().After(deadline) {
			t.Fatal("added backend was never checked down")
		}
		clk.WaitPending(2, 200*time.Millisecond)
		clk.Advance(time.Second)
	}
	at, ok, msg := stDead.LastCheck()
	if at.IsZero() || ok || msg == "" {
		t.Fatalf("LastCheck = %v %v %q", at, ok, msg)
	}

	// Remove it: its checks stop.
	p.Update(testCfg([]string{up}, func(c *config.Pool) { c.PanicThreshold = 0 }), time.Minute, nil)
	if !clk.WaitPending(1, 5*time.Second) {
		t.Fatal("the kept backend's checker is not parked")
	}
	before, _, _ := stDead.LastCheck()
	for i := 0; i < 3; i++ {
		clk.WaitPending(1, 200*time.Millisecond)
		clk.Advance(time.Second)
	}
	if after, _, _ := stDead.LastCheck(); !after.Equal(before) {
		// A check already under way at the Update may still land; allow
		// one, but not a schedule.
		for i := 0; i < 3; i++ {
			clk.WaitPending(1, 200*time.Millisecond)
			clk.Advance(time.Second)
		}
		if again, _, _ := stDead.LastCheck(); !again.Equal(after) {
			t.Fatal("a removed backend is still being checked")
		}
	}
}
