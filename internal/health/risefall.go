package health

// riseFall is the HAProxy-style rise/fall state machine of one target. It is
// pure: the caller feeds it check outcomes and applies the verdict.
//
// While up, fall consecutive failures turn it down; a success resets the
// failure run. While down, rise consecutive successes turn it up; a failure
// resets the success run. A threshold below 1 counts as 1. The thresholds
// are passed on every call so that a reloaded config applies from the next
// check without losing the runs counted so far.
//
// The zero value is down; use newRiseFall to start from a known verdict.
type riseFall struct {
	up  bool
	run int // consecutive outcomes that disagree with up
}

func newRiseFall(up bool) riseFall { return riseFall{up: up} }

// observe feeds one check outcome and reports whether the verdict changed.
func (r *riseFall) observe(ok bool, rise, fall int) (changed bool) {
	if ok == r.up {
		r.run = 0
		return false
	}
	r.run++
	need := fall
	if !r.up {
		need = rise
	}
	if r.run < max(need, 1) {
		return false
	}
	r.up = ok
	r.run = 0
	return true
}
