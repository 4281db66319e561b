// Package window keeps one backend's last minute of traffic: requests,
// errors and a latency histogram, from which the admin API and the dashboard
// show requests per second, the error rate and the p50 and p99 latency. It
// is kept in fulcrum, not derived from Prometheus, so that it needs no
// scraper.
//
// A Ring is six slots of ten seconds. Every counter is one 64-bit word
// holding the slot's epoch (which ten seconds it counts) in its high 32 bits
// and the count in its low 32 bits, so a slot is rotated word by word with a
// compare-and-swap when the first sample of a new ten seconds reaches it,
// and a reader ignores words of an epoch older than the last minute. A ring
// takes about 4.5 KB.
// Recording takes no lock and allocates nothing: a few atomic operations.
//
// This package imports no other fulcrum package.
package window

import (
	"math"
	"math/bits"
	"strconv"
	"sync/atomic"
	"time"
)

const (
	// SlotSeconds is the width of one slot.
	SlotSeconds = 10
	// Slots is the number of slots: Slots × SlotSeconds is one minute.
	Slots = 6
	// Bins is the number of latency bins: bin 0 holds latencies below
	// 16 units of 1.024 µs (16.4 µs), bins 1..Bins-2 four bins per power
	// of two up to 2^26 units (68.7 s), and the last bin everything above.
	Bins = 1 + subBins*(lastExp-firstExp) + 1

	unitShift = 10 // one latency unit is 2^10 ns = 1.024 µs
	firstExp  = 4  // bin 1 starts at 2^firstExp units
	lastExp   = 26 // the last bin starts at 2^lastExp units
	subBits   = 2
	subBins   = 1 << subBits // bins per power of two: each spans a factor of 1.25 at most
	countMask = 1<<32 - 1
)

// Ring is one backend's last minute. The zero value is not usable: create it
// with New. All methods are safe for concurrent use. A Ring must not be
// copied.
type Ring struct {
	born int64 // unix nanoseconds at New: the span of a young ring is its age
	req  [Slots]atomic.Uint64
	errs [Slots]atomic.Uint64
	lat  [Slots][Bins]atomic.Uint64
}

// New returns an empty ring created at now.
func New(now time.Time) *Ring { return &Ring{born: now.UnixNano()} }

// epoch is the slot epoch of the unix second sec, never 0 (0 marks a word
// that was never written).
func epoch(sec int64) uint64 { return uint64(sec/SlotSeconds) + 1 }

// bump adds one to w in epoch ep, first resetting it if it still counts an
// older epoch. A sample whose epoch is older than the word's (a caller
// holding a time from before a rotation) is counted in the word's epoch: it
// is at most a few microseconds old.
func bump(w *atomic.Uint64, ep uint64) {
	for {
		old := w.Load()
		if old>>32 >= ep {
			w.Add(1)
			return
		}
		if w.CompareAndSwap(old, ep<<32|1) {
			return
		}
	}
}

// Record counts one request that ended at now. latency is the time to the
// backend's response head, or negative when there was none (a connect
// failure, a timeout, a reset); failed says whether it counts as an error.
// It takes no lock and allocates nothing.
func (r *Ring) Record(now time.Time, latency time.Duration, failed bool) {
	sec := now.Unix()
	ep := epoch(sec)
	i := (sec / SlotSeconds) % Slots
	bump(&r.req[i], ep)
	if failed {
		bump(&r.errs[i], ep)
	}
	if latency >= 0 {
		bump(&r.lat[i][bin(latency)], ep)
	}
}

// bin is the latency bin of d.
func bin(d time.Duration) int {
	v := uint64(d) >> unitShift
	if v < 1<<firstExp {
		return 0
	}
	e := bits.Len64(v) - 1
	k := 1 + subBins*(e-firstExp) + int(v>>(e-subBits)&(subBins-1))
	return min(k, Bins-1)
}

// binBounds is the range [lo, hi) of bin k; the last bin's hi equals its lo.
func binBounds(k int) (lo, hi time.Duration) {
	if k == 0 {
		return 0, 1 << firstExp << unitShift
	}
	if k == Bins-1 {
		lo = 1 << lastExp << unitShift
		return lo, lo
	}
	e := firstExp + (k-1)/subBins
	l := uint64(1)<<e + uint64((k-1)%subBins)<<(e-subBits)
	return time.Duration(l << unitShift), time.Duration((l + 1<<(e-subBits)) << unitShift)
}

// Stats is a summary of the last minute. Latencies are estimated from the
// histogram by interpolation inside a bin (a bin spans a factor of 1.25 at
// most, so an estimate is off by a few percent, at worst by a bin's width
// where the distribution ends inside the bin); they are 0 when no request
// had one.
type Stats struct {
	Requests uint64
	Errors   uint64
	// Span is the time the counts cover: up to one minute, less for a ring
	// younger than that.
	Span time.Duration
	P50  time.Duration
	P99  time.Duration
}

// RPS is the request rate over the span.
func (s Stats) RPS() float64 {
	if s.Span <= 0 {
		return 0
	}
	return float64(s.Requests) / s.Span.Seconds()
}

// ErrorRate is the share of requests that failed (0..1).
func (s Stats) ErrorRate() float64 {
	if s.Requests == 0 {
		return 0
	}
	return float64(s.Errors) / float64(s.Requests)
}

// Stats summarises the minute up to now: the current slot so far and the
// five before it. It reads every word once and allocates nothing.
func (r *Ring) Stats(now time.Time) Stats {
	sec := now.Unix()
	cur := epoch(sec)
	oldest := cur - (Slots - 1)
	live := func(w uint64) uint64 {
		if ep := w >> 32; ep >= oldest && ep <= cur {
			return w & countMask
		}
		return 0
	}
	var st Stats
	var hist [Bins]uint64
	var samples uint64
	for i := range Slots {
		n := live(r.req[i].Load())
		if n == 0 {
			// Record counts the request before its error and latency, so
			// a slot without a live request count has no live sample.
			continue
		}
		st.Requests += n
		st.Errors += live(r.errs[i].Load())
		for k := range Bins {
			c := live(r.lat[i][k].Load())
			hist[k] += c
			samples += c
		}
	}
	// Five whole slots and the part of the current one that has passed.
	into := time.Duration(sec%SlotSeconds)*time.Second + time.Duration(now.Nanosecond())
	st.Span = (Slots-1)*SlotSeconds*time.Second + into
	if age := time.Duration(now.UnixNano() - r.born); age < st.Span {
		st.Span = max(age, time.Second)
	}
	if samples > 0 {
		st.P50 = quantile(&hist, samples, 0.50)
		st.P99 = quantile(&hist, samples, 0.99)
	}
	return st
}

// quantile estimates the q-quantile of the n samples in hist by linear
// interpolation inside the bin that holds it.
func quantile(hist *[Bins]uint64, n uint64, q float64) time.Duration {
	rank := q * float64(n)
	var cum float64
	for k, c := range hist {
		if c == 0 {
			continue
		}
		if cum+float64(c) >= rank {
			lo, hi := binBounds(k)
			frac := (rank - cum) / float64(c)
			return lo + time.Duration(frac*float64(hi-lo))
		}
		cum += float64(c)
	}
	lo, _ := binBounds(Bins - 1)
	return lo
}

// MarshalJSON writes the admin API's form of s:
// {"requests", "errors", "rps", "error_rate", "p50_ms", "p99_ms"}, rates
// and latencies rounded to three decimals.
func (s Stats) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 112)
	b = append(b, `{"requests":`...)
	b = strconv.AppendUint(b, s.Requests, 10)
	b = append(b, `,"errors":`...)
	b = strconv.AppendUint(b, s.Errors, 10)
	b = append(b, `,"rps":`...)
	b = AppendRounded(b, s.RPS())
	b = append(b, `,"error_rate":`...)
	b = AppendRounded(b, s.ErrorRate())
	b = append(b, `,"p50_ms":`...)
	b = AppendRounded(b, Millis(s.P50))
	b = append(b, `,"p99_ms":`...)
	b = AppendRounded(b, Millis(s.P99))
	return append(b, '}'), nil
}

// Millis is d in milliseconds.
func Millis(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// AppendRounded appends v rounded to three decimals, without trailing zeros.
func AppendRounded(b []byte, v float64) []byte {
	return strconv.AppendFloat(b, math.Round(v*1000)/1000, 'f', -1, 64)
}
