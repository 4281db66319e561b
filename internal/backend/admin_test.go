package backend

import (
	"testing"
	"time"
)

func TestAdminState(t *testing.T) {
	now := time.Now()
	s := NewState(now)
	if s.Admin() != AdminReady || !s.Serving(now) || s.Admin().String() != "ready" {
		t.Fatalf("new state: %s serving=%v", s.Admin(), s.Serving(now))
	}
	for _, a := range []AdminState{AdminDrain, AdminDisabled} {
		prev := s.SetAdmin(a)
		if s.Serving(now) || !s.Usable(now) || s.Admin() != a {
			t.Fatalf("%s: serving=%v usable=%v; want out of service but usable by health", a, s.Serving(now), s.Usable(now))
		}
		s.SetAdmin(prev)
	}
	if AdminDrain.String() != "drain" || AdminDisabled.String() != "disabled" {
		t.Fatal("names")
	}
	s.SetHealthy(false, now)
	if s.Serving(now) {
		t.Fatal("a down backend is serving")
	}
}

func TestRuntimeWeight(t *testing.T) {
	s := NewState(time.Now())
	if s.Weight(3) != 3 {
		t.Fatal("no runtime weight: the file's")
	}
	s.SetWeight(7, 3)
	if s.Weight(3) != 7 {
		t.Fatalf("Weight(3) = %d, want 7", s.Weight(3))
	}
	s.ReconcileWeight(3)
	if s.Weight(3) != 7 {
		t.Fatal("an unchanged file weight dropped the runtime weight")
	}
	s.ReconcileWeight(4)
	if s.Weight(4) != 4 || s.Weight(3) != 3 {
		t.Fatalf("after the file changed to 4: Weight(4) = %d, Weight(3) = %d; want the file's", s.Weight(4), s.Weight(3))
	}
}

func TestDownReason(t *testing.T) {
	now := time.Now()
	s := NewState(now)
	if s.DownReason(now) != "" {
		t.Fatal("up backend has a down reason")
	}
	s.SetHealthy(false, now)
	if s.DownReason(now) != "active health checks failed" {
		t.Fatalf("down without detail: %q", s.DownReason(now))
	}
	s.SetDownDetail("timeout after 2s")
	s.SetEjectReason("ejected after 3 failures: HTTP 502")
	s.TryEject(now.Add(time.Second))
	if s.DownReason(now) != "timeout after 2s" {
		t.Fatalf("down and ejected: %q, want the active check's detail", s.DownReason(now))
	}
	s.SetHealthy(true, now)
	if s.DownReason(now) != "ejected after 3 failures: HTTP 502" {
		t.Fatalf("ejected: %q", s.DownReason(now))
	}
	s.Readmit(now)
	if s.DownReason(now) != "" {
		t.Fatalf("readmitted: %q", s.DownReason(now))
	}
}
