// Package preview says what a reload would change. It reduces a validated
// configuration to a Model (what a reload acts on, with every secret
// replaced by a salted SHA-256 fingerprint, so a Model can leave the
// process through the admin API) and diffs two Models into an ordered list
// of Changes: listeners, routes, pools and backends added, removed or
// changed, and the changes that reset state (sticky pins, strategies, keys a
// consistent-hash table moves, counted on the real tables of
// internal/balance).
//
// Nothing here runs on the request path.
package preview

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"fulcrum/internal/config"
	"fulcrum/internal/pool"
)

// Version is the version of the Model's JSON form. Decode refuses others.
const Version = 1

// Model is what a reload compares: a configuration without its secrets.
// Build it with FromConfig; it is not modified afterwards.
type Model struct {
	Version int `json:"version"`
	// Salt (hex) keys every fingerprint in the model. Two models are
	// comparable only when they share it: the client that previews a file
	// against a running process builds the file's model with the salt the
	// running model came with.
	Salt string `json:"salt"`
	Flat bool   `json:"flat"`
	// AdminAddr and LogFormat cannot change on reload.
	AdminAddr string `json:"admin_addr"`
	LogFormat string `json:"log_format"`
	// Settings are the other top-level keys that apply on reload, by key:
	// log_level, access_log, access_log_format, shutdown_timeout, tracing and
	// tracing.*, and admin_token (a
	// fingerprint, or "" when there is none).
	Settings  map[string]string `json:"settings"`
	Listeners []Listener        `json:"listeners"`
	Pools     []Pool            `json:"pools"`
}

// Listener is one configured listener.
type Listener struct {
	Name       string            `json:"name"`
	ListenAddr string            `json:"listen_addr"`
	Settings   map[string]string `json:"settings"`
	Routes     []Route           `json:"routes"`
}

// Route is one route, identified by its label (its name, or LISTENER/INDEX).
type Route struct {
	Label string `json:"label"`
	Index int    `json:"index"`
	// Action summarises the action: "pool NAME", "split A:95,B:5",
	// "redirect 301" or "respond 200".
	Action string `json:"action"`
	// Match and Rewrite summarise the conditions ("path_prefix=/api/
	// method=GET", "any") and the path and host rewrite ("strip_prefix=/v1",
	// "none") for messages.
	Match   string `json:"match"`
	Rewrite string `json:"rewrite"`
	// Parts are fingerprints of the route's match, action, rewrite and
	// header operations: what the diff compares (a summary may leave a
	// detail out, a fingerprint does not).
	Parts map[string]string `json:"parts"`
}

// Pool is one configured pool.
type Pool struct {
	Name     string `json:"name"`
	Strategy string `json:"strategy"`
	HashKey  string `json:"hash_key,omitempty"`
	// Sticky holds what decides where pinned clients go; nil when off. Its
	// other keys (ttl, secure, ...) are in Settings as "sticky.KEY".
	Sticky   *Sticky           `json:"sticky,omitempty"`
	Settings map[string]string `json:"settings"`
	Backends []Backend         `json:"backends"`
}

// Sticky is the part of a pool's session persistence that, when changed,
// moves pinned clients.
type Sticky struct {
	Type       string `json:"type"`
	CookieName string `json:"cookie_name,omitempty"`
	// Secret is the fingerprint of sticky.secret, "" when unset.
	Secret string `json:"secret,omitempty"`
}

// Backend is one backend of a pool, identified by Key as the running pool
// identifies it across reloads (scheme://host:port).
type Backend struct {
	URL    string `json:"url"`
	Key    string `json:"key"`
	Weight int    `json:"weight"`
}

// NewSalt returns a fresh random salt for FromConfig.
func NewSalt() string {
	b := make([]byte, 16)
	rand.Read(b) // never fails (crypto/rand documents it)
	return hex.EncodeToString(b)
}

// fingerprintPrefix starts every fingerprint, so that the diff names a
// changed secret without printing a value.
const fingerprintPrefix = "sha256:"

// fingerprint is the salted SHA-256 of v; "" stays "" so that "set" and
// "unset" remain visible. It tells whether a secret changed and nothing
// else (a weak secret can still be guessed from it, as from any hash: the
// admin API that serves it needs the admin token when one is set).
func fingerprint(salt, v string) string {
	if v == "" {
		return ""
	}
	h := sha256.New()
	h.Write([]byte(salt))
	h.Write([]byte{0})
	h.Write([]byte(v))
	return fingerprintPrefix + hex.EncodeToString(h.Sum(nil))
}

// FromConfig reduces cfg (loaded and validated by internal/config) to its
// Model, fingerprinting secrets with salt.
func FromConfig(cfg *config.Config, salt string) *Model {
	m := &Model{
		Version: Version, Salt: salt, Flat: cfg.Flat, AdminAddr: cfg.AdminAddr, LogFormat: cfg.LogFormat,
		Settings:  globalSettings(cfg, salt),
		Listeners: make([]Listener, 0, len(cfg.Listeners)),
		Pools:     make([]Pool, 0, len(cfg.Pools)),
	}
	for i := range cfg.Listeners {
		lc := &cfg.Listeners[i]
		l := Listener{Name: lc.Name, ListenAddr: lc.Listen, Settings: listenerSettings(lc), Routes: make([]Route, 0, len(lc.Routes))}
		for j := range lc.Routes {
			l.Routes = append(l.Routes, routeOf(lc.Name, j, &lc.Routes[j], salt))
		}
		m.Listeners = append(m.Listeners, l)
	}
	for i := range cfg.Pools {
		pc := &cfg.Pools[i]
		p := Pool{Name: pc.Name, Strategy: pc.Strategy, HashKey: hashKeyString(pc.HashKey),
			Settings: poolSettings(pc, salt), Backends: make([]Backend, 0, len(pc.Backends))}
		if s := pc.Sticky; s != nil {
			p.Sticky = &Sticky{Type: s.Type, CookieName: s.CookieName, Secret: fingerprint(salt, s.Secret)}
		}
		for _, b := range pc.Backends {
			p.Backends = append(p.Backends, Backend{URL: b.URL, Key: pool.Key(b), Weight: b.Weight})
		}
		m.Pools = append(m.Pools, p)
	}
	return m
}

// Decode parses the JSON form of a Model, as GET /admin/config serves it,
// and checks what Diff relies on: the version, names and keys present and
// unique, weights of at least 1. Unknown fields are ignored (a newer
// server may add some).
func Decode(data []byte) (*Model, error) {
	var m Model
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("not a configuration model: %w", err)
	}
	if m.Version != Version {
		return nil, fmt.Errorf("configuration model version %d, this fulcrum reads version %d", m.Version, Version)
	}
	if m.Salt == "" {
		return nil, errors.New("configuration model without a salt")
	}
	if err := unique("listener", len(m.Listeners), func(i int) string { return m.Listeners[i].Name }); err != nil {
		return nil, err
	}
	for _, l := range m.Listeners {
		if err := unique("route of listener "+l.Name, len(l.Routes), func(i int) string { return l.Routes[i].Label }); err != nil {
			return nil, err
		}
	}
	if err := unique("pool", len(m.Pools), func(i int) string { return m.Pools[i].Name }); err != nil {
		return nil, err
	}
	for _, p := range m.Pools {
		if err := unique("backend of pool "+p.Name, len(p.Backends), func(i int) string { return p.Backends[i].Key }); err != nil {
			return nil, err
		}
		for _, b := range p.Backends {
			if b.Weight < 1 {
				return nil, fmt.Errorf("pool %s: backend %s: weight %d, want >= 1", p.Name, b.Key, b.Weight)
			}
		}
	}
	return &m, nil
}

// unique checks that the n names are non-empty and distinct.
func unique(what string, n int, name func(int) string) error {
	seen := make(map[string]bool, n)
	for i := range n {
		s := name(i)
		if s == "" {
			return fmt.Errorf("%s %d has no name", what, i)
		}
		if seen[s] {
			return fmt.Errorf("%s %q appears twice", what, s)
		}
		seen[s] = true
	}
	return nil
}
