package backend

import "time"

// AdminState is what an operator asked of a backend at runtime (the admin
// API's drain, disable and enable). It lives in State, so it survives
// reloads that keep the backend, and a restart starts from AdminReady.
type AdminState int32

const (
	// AdminReady is normal operation.
	AdminReady AdminState = iota
	// AdminDrain: no new requests (sticky clients move elsewhere); requests
	// in flight finish.
	AdminDrain
	// AdminDisabled: no traffic at all, sticky and retries included.
	AdminDisabled
)

// String is the state's name in the admin API: ready, drain or disabled.
func (a AdminState) String() string {
	switch a {
	case AdminDrain:
		return "drain"
	case AdminDisabled:
		return "disabled"
	}
	return "ready"
}

// Admin is the backend's admin state.
func (s *State) Admin() AdminState { return AdminState(s.admin.Load()) }

// SetAdmin stores the admin state and returns the previous one. The caller
// republishes its snapshot so that pickers see the change.
func (s *State) SetAdmin(a AdminState) AdminState { return AdminState(s.admin.Swap(int32(a))) }

// Serving reports whether the backend may take new requests at now: usable
// (healthy and not ejected) and in admin state ready. Sticky pins and the
// fallbacks of the request path check it, so a drained or disabled backend
// is passed over even by a request holding an older snapshot.
func (s *State) Serving(now time.Time) bool {
	return s.admin.Load() == int32(AdminReady) && s.Usable(now)
}

// Weight is the weight in force for a backend configured with weight file:
// the runtime weight if one was set while the file said file, else file.
func (s *State) Weight(file int) int {
	if w := s.weight.Load(); w > 0 && s.weightBase.Load() == int64(file) {
		return int(w)
	}
	return file
}

// SetWeight sets the runtime weight w (> 0), in force while the configured
// weight stays file. Callers serialise SetWeight and ReconcileWeight (the
// pool's lock).
func (s *State) SetWeight(w, file int) {
	s.weightBase.Store(int64(file))
	s.weight.Store(int64(w))
}

// ReconcileWeight drops the runtime weight when the configured weight is no
// longer the one it was set against (a reload changed it in the file: the
// file's weight wins, and stays the winner if a later reload goes back).
func (s *State) ReconcileWeight(file int) {
	if s.weight.Load() > 0 && s.weightBase.Load() != int64(file) {
		s.weight.Store(0)
	}
}

// SetDownDetail records the failing active check's detail (for DownReason).
func (s *State) SetDownDetail(d string) { s.downDetail.Store(&d) }

// SetEjectReason records why passive checks ejected the backend.
func (s *State) SetEjectReason(r string) { s.ejectReason.Store(&r) }

// DownReason says why the backend is not usable at now, or "" while it is:
// the failing active check's detail while active checks hold it down, else
// the ejection's reason while passive checks eject it.
func (s *State) DownReason(now time.Time) string {
	if !s.Healthy() {
		if p := s.downDetail.Load(); p != nil {
			return *p
		}
		return "active health checks failed"
	}
	if s.Ejected(now) {
		if p := s.ejectReason.Load(); p != nil {
			return *p
		}
		return "ejected by passive health checks"
	}
	return ""
}
