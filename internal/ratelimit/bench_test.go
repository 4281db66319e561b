package ratelimit

import (
	"encoding/binary"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

type allower interface {
	Allow(key []byte, now time.Time) (bool, int)
}

func impls() []struct {
	name string
	new  func() allower
} {
	return []struct {
		name string
		new  func() allower
	}{
		// A burst no benchmark uses up: every call is allowed.
		{"lib", func() allower { return New(1e6, 1<<50) }},
	}
}

// keyOf writes the 16-byte key of client i (an IPv6-mapped address, as the
// proxy's client-IP key) into k.
func keyOf(k []byte, i uint64) []byte {
	binary.BigEndian.PutUint64(k[8:], i)
	return k
}

// BenchmarkAllow: one known key (a client sending many requests), and many
// keys (200k distinct clients cycling through the 100k-key table, so most
// requests create a key and evict one).
func BenchmarkAllow(b *testing.B) {
	now := time.Unix(1_700_000_000, 0)
	for _, im := range impls() {
		for _, keyLen := range []int{16, 64} {
			b.Run(im.name+"/known/keylen="+strconv.Itoa(keyLen), func(b *testing.B) {
				l := im.new()
				k := make([]byte, keyLen)
				b.ReportAllocs()
				for i := 0; b.Loop(); i++ {
					l.Allow(k, now.Add(time.Duration(i)*time.Microsecond))
				}
			})
		}
		b.Run(im.name+"/many", func(b *testing.B) {
			l := im.new()
			k := make([]byte, 16)
			b.ReportAllocs()
			for i := uint64(0); b.Loop(); i++ {
				l.Allow(keyOf(k, i%200_000), now)
			}
		})
		b.Run(im.name+"/parallel-known", func(b *testing.B) {
			l := im.new()
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				k := make([]byte, 16)
				for pb.Next() {
					l.Allow(k, now)
				}
			})
		})
		b.Run(im.name+"/parallel-many", func(b *testing.B) {
			l := im.new()
			var next atomic.Uint64
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				k := make([]byte, 16)
				base := next.Add(1) << 32
				for i := uint64(0); pb.Next(); i++ {
					l.Allow(keyOf(k, base|(i%1000)), now)
				}
			})
		})
	}
}

// BenchmarkAllowDenied: a known key over its limit (the 429 path).
func BenchmarkAllowDenied(b *testing.B) {
	now := time.Unix(1_700_000_000, 0)
	for _, im := range []struct {
		name string
		l    allower
	}{{"lib", New(1, 1)}} {
		b.Run(im.name, func(b *testing.B) {
			k := make([]byte, 16)
			im.l.Allow(k, now)
			b.ReportAllocs()
			for b.Loop() {
				if ok, _ := im.l.Allow(k, now); ok {
					b.Fatal("allowed")
				}
			}
		})
	}
}
