// Package requestid makes and checks the X-Request-Id values that fulcrum
// sends to backends and writes in its access log.
//
// A generated ID is 32 lowercase hex digits: the first 16 are a random value
// drawn once per Generator (crypto/rand), the last 16 a per-Generator counter
// passed through a bijective 64-bit mixer, so IDs never repeat within a
// Generator (for 2^64 requests), do not look sequential, and are unique
// across processes with overwhelming probability. Making one costs one
// atomic add and no system call or allocation.
package requestid

import (
	"crypto/rand"
	"encoding/binary"
	"sync/atomic"
)

// Header is the request field that carries the ID.
const Header = "X-Request-Id"

// Len is the length of a generated ID.
const Len = 32

// MaxLen bounds an ID fulcrum keeps from a trusted proxy; a longer one is
// replaced.
const MaxLen = 200

// Generator makes request IDs. Its methods are safe for concurrent use.
type Generator struct {
	prefix [16]byte // hex digits of the random value
	seed   uint64
	n      atomic.Uint64
}

// New returns a Generator with a fresh random prefix and seed.
func New() *Generator {
	var r [16]byte
	rand.Read(r[:]) // never fails on supported platforms (crypto/rand documents it)
	g := &Generator{seed: binary.LittleEndian.Uint64(r[8:])}
	putHex(&g.prefix, binary.LittleEndian.Uint64(r[:8]))
	return g
}

// Append appends a new ID (Len bytes) to dst.
func (g *Generator) Append(dst []byte) []byte {
	var id [Len]byte
	copy(id[:16], g.prefix[:])
	putHex((*[16]byte)(id[16:]), mix(g.seed+g.n.Add(1)*0x9e3779b97f4a7c15))
	return append(dst, id[:]...)
}

// mix is splitmix64's finaliser, a bijection on uint64 (each step is
// invertible), so distinct counters give distinct IDs.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

const hexDigits = "0123456789abcdef"

// putHex writes v as 16 hex digits, most significant first.
func putHex(dst *[16]byte, v uint64) {
	for i := 15; i >= 0; i-- {
		dst[i] = hexDigits[v&0xf]
		v >>= 4
	}
}

// Valid reports whether an incoming ID may be kept: 1 to MaxLen bytes, each
// an ASCII letter or digit or one of - _ . : + / = @ ~ (enough for UUIDs,
// ULIDs, base64 and most tracing IDs). Anything else (spaces, quotes,
// control bytes, commas, non-ASCII) could break a log line or a backend's
// parser, so such an ID is replaced.
func Valid(b []byte) bool {
	if len(b) == 0 || len(b) > MaxLen {
		return false
	}
	for _, c := range b {
		if !allowed(c) {
			return false
		}
	}
	return true
}

func allowed(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	switch c {
	case '-', '_', '.', ':', '+', '/', '=', '@', '~':
		return true
	}
	return false
}
