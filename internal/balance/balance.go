// Package balance implements the load-balancing strategies. A Builder turns an
// immutable snapshot of usable backends into a Picker; the request path calls
// Pick and nothing else. Pick never blocks, takes no lock, allocates nothing
// and costs O(1) or O(log n) in the number of backends.
//
// No strategy imports net/http: the same pickers serve L7 and L4.
package balance

import (
	"errors"

	"fulcrum/internal/backend"
)

// ErrNoBackend is returned by Pick when there is no usable backend.
var ErrNoBackend = errors.New("no backend available")

// Request is what a picker may look at. It is filled by the proxy and lives on
// the proxy's per-connection state, so passing a pointer does not allocate.
// A nil *Request is treated as the zero Request.
type Request struct {
	// Hash is the hash of the affinity key (client IP for ip_hash, the
	// hash_key value for consistent_hash). Valid only when HasHash is set.
	Hash    uint64
	HasHash bool
	// Exclude, when non-nil, names a backend the picker should avoid if any
	// other is available (used by retries). It is matched by State, so a
	// Backend from an older snapshot still matches. Pickers return it anyway
	// when it is the only backend.
	Exclude *backend.Backend
}

// Picker chooses a backend for one request.
//
// Pick may be called concurrently from any goroutine, must not block, and
// returns ErrNoBackend only when the snapshot is empty. The caller brackets
// the request with b.State.Acquire() and b.State.Release(...); the
// load-aware strategies rely on it.
type Picker interface {
	Pick(r *Request) (*backend.Backend, error)
}

// Rand is an injected source of uniformly distributed random numbers.
// It must be safe for concurrent use. NewRand returns the production source.
type Rand interface {
	Uint64() uint64
}

// Builder builds a Picker over backends: all usable (health filtering happens
// before), in configured order, with distinct States. It runs on the slow
// path (start-up, reload, health transition, slow-start step), never
// concurrently with itself for the same backends. The caller must not modify
// the slice or its elements afterwards. An empty slice yields a Picker whose
// Pick returns ErrNoBackend. rnd is used only by random and power_of_two; nil
// means NewRand().
//
// least_connections and least_response_time install the built picker as the
// load observer of every backend's State (backend.State.SetObserver); the most
// recently built one wins, so build at most one live load-aware picker per
// State. A retired picker stays installed on States that are not in any newer
// load-aware snapshot (dropped backends, strategy changed by a reload): that
// is harmless, but costs O(log n) per Acquire/Release until the owner calls
// SetObserver(nil, 0) on them.
type Builder func(backends []*backend.Backend, rnd Rand) Picker

// Lookup returns the Builder of the strategy named in the configuration.
func Lookup(name string) (Builder, bool) {
	b, ok := builders[name]
	return b, ok
}

// builders is the strategy table. It is a literal: no init-time registration,
// and nothing writes to it.
var builders = map[string]Builder{
	"round_robin":          buildRoundRobin,
	"weighted_round_robin": buildWeightedRoundRobin,
	"least_connections":    buildLeastConnections,
	"least_response_time":  buildLeastResponseTime,
	"ip_hash":              buildHash,
	"consistent_hash":      buildHash,
	"random":               buildRandom,
	"power_of_two":         buildPowerOfTwo,
}

// errPicker serves an empty snapshot.
type errPicker struct{}

var _ Picker = errPicker{}

func (errPicker) Pick(*Request) (*backend.Backend, error) { return nil, ErrNoBackend }

// singlePicker serves a snapshot of one backend, whatever the strategy.
type singlePicker struct{ b *backend.Backend }

var _ Picker = (*singlePicker)(nil)

func (p *singlePicker) Pick(*Request) (*backend.Backend, error) { return p.b, nil }

// trivial returns the picker for snapshots of fewer than two backends, for
// which every strategy agrees, and false for larger ones.
func trivial(backends []*backend.Backend) (Picker, bool) {
	switch len(backends) {
	case 0:
		return errPicker{}, true
	case 1:
		return &singlePicker{b: backends[0]}, true
	}
	return nil, false
}

// maxWeight bounds the weights the strategies work with, so that products of
// a weight and an in-flight count cannot overflow int64. Config weights are
// far below it.
const maxWeight = 1 << 24

// weightOf is the weight a strategy uses for b: EffectiveWeight (Weight scaled
// by slow start), falling back to Weight when it is unset, clamped to
// [1, maxWeight].
func weightOf(b *backend.Backend) int64 {
	w := b.EffectiveWeight
	if w <= 0 {
		w = b.Weight
	}
	return min(max(int64(w), 1), maxWeight)
}

// excluded reports whether r asks to avoid b.
func excluded(r *Request, b *backend.Backend) bool {
	if r == nil || r.Exclude == nil {
		return false
	}
	return r.Exclude == b || (b.State != nil && r.Exclude.State == b.State)
}

// cacheLinePad keeps a hot atomic counter off the cache line of the
// read-mostly fields next to it.
type cacheLinePad struct{ _ [64]byte }
