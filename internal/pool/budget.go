package pool

import (
	"sync/atomic"
	"time"
)

// Retry budget: retries may add at most budgetPercent of the requests seen
// over the last budgetWindow seconds, plus budgetMin so that a quiet pool
// can still retry. This keeps retries from multiplying load in an outage.
const (
	budgetWindow  = 10
	budgetPercent = 20
	budgetMin     = 3
)

type budgetBucket struct {
	sec     atomic.Int64
	reqs    atomic.Int64
	retries atomic.Int64
}

// RetryBudget counts requests and retries in one-second buckets. All methods
// are lock-free and safe for concurrent use.
type RetryBudget struct {
	buckets [budgetWindow]budgetBucket
}

func (b *RetryBudget) bucket(now int64) *budgetBucket {
	bk := &b.buckets[now%budgetWindow]
	if s := bk.sec.Load(); s != now {
		if bk.sec.CompareAndSwap(s, now) {
			bk.reqs.Store(0)
			bk.retries.Store(0)
		}
	}
	return bk
}

// Request counts one request.
func (b *RetryBudget) Request(now time.Time) { b.bucket(now.Unix()).reqs.Add(1) }

// TryRetry reports whether a retry fits the budget and, if so, counts it.
func (b *RetryBudget) TryRetry(now time.Time) bool {
	sec := now.Unix()
	var reqs, retries int64
	for i := range b.buckets {
		bk := &b.buckets[i]
		if s := bk.sec.Load(); s > sec-budgetWindow && s <= sec {
			reqs += bk.reqs.Load()
			retries += bk.retries.Load()
		}
	}
	if retries >= budgetMin && retries*100 >= reqs*budgetPercent {
		return false
	}
	b.bucket(sec).retries.Add(1)
	return true
}
