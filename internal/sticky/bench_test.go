package sticky

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

type table interface {
	Get(k []byte, now time.Time) (uint64, bool)
	Put(k []byte, id uint64, now time.Time)
}

func tables() []struct {
	name string
	new  func() table
} {
	return []struct {
		name string
		new  func() table
	}{
		{"lib", func() table { return NewTable(100_000, time.Hour) }},
	}
}

// sessionKey is a cookie value of n bytes for session i.
func sessionKey(n, i int) []byte {
	k := fmt.Appendf(nil, "%0*d", n, i)
	return k[len(k)-n:]
}

// BenchmarkTable: Get and Put of one known session, of many sessions (the
// table full, Put of new values evicting), sequential and parallel, for
// cookie values of 32 bytes (a Tomcat JSESSIONID) and 64 bytes.
func BenchmarkTable(b *testing.B) {
	now := time.Unix(1_700_000_000, 0)
	for _, tb := range tables() {
		for _, n := range []int{32, 64} {
			name := fmt.Sprintf("%s/len=%d", tb.name, n)
			b.Run(name+"/get-known", func(b *testing.B) {
				t := tb.new()
				k := sessionKey(n, 1)
				t.Put(k, 1, now)
				b.ReportAllocs()
				for b.Loop() {
					t.Get(k, now)
				}
			})
			b.Run(name+"/put-known", func(b *testing.B) {
				t := tb.new()
				k := sessionKey(n, 1)
				t.Put(k, 1, now)
				b.ReportAllocs()
				for b.Loop() {
					t.Put(k, 2, now)
				}
			})
			b.Run(name+"/put-new", func(b *testing.B) {
				t := tb.new()
				keys := make([][]byte, 200_000)
				for i := range keys {
					keys[i] = sessionKey(n, i)
				}
				b.ReportAllocs()
				for i := 0; b.Loop(); i++ {
					t.Put(keys[i%len(keys)], 1, now)
				}
			})
			b.Run(name+"/parallel-get", func(b *testing.B) {
				t := tb.new()
				keys := make([][]byte, 10_000)
				for i := range keys {
					keys[i] = sessionKey(n, i)
					t.Put(keys[i], uint64(i), now)
				}
				var g atomic.Int64
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					for i := int(g.Add(1)) * 7919; pb.Next(); i++ {
						t.Get(keys[i%len(keys)], now)
					}
				})
			})
		}
	}
}
