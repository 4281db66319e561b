// Package forward is the protocol-neutral forwarding core: for one request
// routed to a pool it picks a backend, takes a request slot (waiting in the
// pool's queue when every backend is full), and repeats failed attempts on
// other backends while the retry policy and the pool's retry budget allow.
// It knows pools, strategies, limits and retries, not the wire protocol: a
// protocol front (HTTP/1.1 today, HTTP/2 next) implements Wire, which sends
// the request to one backend and relays its answer, and answers the client
// when no backend could.
package forward

import (
	"time"

	"fulcrum/internal/backend"
	"fulcrum/internal/balance"
	"fulcrum/internal/metrics"
	"fulcrum/internal/pool"
)

// Kind classifies the outcome of one attempt.
type Kind uint8

const (
	// None: a response was relayed (perhaps only in part) or fulcrum
	// answered the client itself; the request is finished.
	None Kind = iota
	// Connect: the backend was never reached.
	Connect
	// Timeout: no response head within response_header_timeout.
	Timeout
	// Reset: the connection was reset or closed before any response byte.
	Reset
	// BadResponse: a malformed response head.
	BadResponse
	// Client: the client went away or sent a bad body; the front answered.
	Client
	// TooLarge: the request body exceeded max_body_bytes; the front answered.
	TooLarge
	// Stale: a reused connection was closed by the backend before any
	// response byte (it had closed the idle connection, or restarted). Not
	// the backend's fault: no passive failure is counted.
	Stale
)

// String names the kind (the error.type of a span's retry event).
func (k Kind) String() string {
	switch k {
	case None:
		return "none"
	case Connect:
		return "connect"
	case Timeout:
		return "timeout"
	case Reset:
		return "reset"
	case BadResponse:
		return "bad_response"
	case Client:
		return "client"
	case TooLarge:
		return "too_large"
	case Stale:
		return "stale"
	}
	return "unknown"
}

// Observer is told what Run does, for tracing. Its methods run on the
// request's goroutine and must not block.
type Observer interface {
	// Retrying: attempt (1 for the first) failed on mem with kind and err,
	// and Run is about to try again on another backend.
	Retrying(attempt int, mem *pool.Member, kind Kind, err error)
}

// Result is what one attempt did.
type Result struct {
	Kind   Kind
	Err    error
	Status int  // the status the client got, when Kind is None, Client or TooLarge
	Keep   bool // whether the client connection may serve another request
}

// Wire is a protocol front's side of forwarding one request.
type Wire interface {
	// Attempt sends the request to mem's backend, on which the caller holds
	// a request slot that Attempt must release exactly once, and relays the
	// answer. fresh asks for a new connection rather than an idle one.
	// Attempt sets call.BodyStarted once a body it cannot replay began to
	// reach the backend.
	Attempt(call *Call, mem *pool.Member, fresh bool) Result
	// Refuse answers 503 when no attempt could be made: no usable backend
	// (busy false; usable is the pool's usable count), or every backend at
	// max_connections (busy true). It finishes the request and reports
	// whether the client connection may be kept.
	Refuse(call *Call, busy bool, usable int) (keep bool)
	// Fail answers status (502, or 504 after a timeout) once the last
	// attempt failed, and finishes the request, naming the backend of the
	// last attempt and its error.
	Fail(status int, mem *pool.Member, err error)
}

// Call is one request on its way to a pool. A front keeps one per
// connection (or stream) and fills it for each request; Run uses it.
type Call struct {
	Pool *pool.Pool
	Snap *pool.Snapshot
	// Pick is the strategy's input (the hash of ip_hash and
	// consistent_hash); Run manages its Exclude.
	Pick balance.Request
	// Pinned is the member index session persistence chose for the first
	// attempt, -1 for none.
	Pinned int
	// Replayable: the request has no body or its body is buffered, so it
	// can be sent again. Idempotent: repeating it is safe. Upgrade: a
	// protocol upgrade (never retried).
	Replayable, Idempotent, Upgrade bool
	// BodyStarted is set by Wire.Attempt once an unbuffered body began to
	// reach a backend.
	BodyStarted bool
	// Retries counts the attempts Run made on another backend after a
	// failed one (what fulcrum_retries_total counts), for the access log.
	Retries int
	// Metrics counts retries; nil without metrics.
	Metrics *metrics.Metrics
	// Observer hears of retries; nil when nothing listens (tracing off).
	Observer Observer
}

// Begin prepares c for a request to p. The caller then sets Pick's hash,
// Pinned and the request's properties.
func (c *Call) Begin(p *pool.Pool, m *metrics.Metrics) {
	*c = Call{Pool: p, Snap: p.Snapshot(), Pinned: -1, Metrics: m}
}

// Run forwards the request: it picks a backend, acquires a slot, calls
// w.Attempt, and on failure retries on another backend while the policy
// allows. It returns whether the client connection may be kept.
func (c *Call) Run(w Wire, start time.Time) (keep bool) {
	snap, cfg := c.Snap, c.Snap.Cfg
	var (
		lastKind  Kind
		lastErr   error
		lastMem   *pool.Member
		tried     *backend.Backend
		attempt   int
		triedList [4]*backend.State // backends of earlier attempts
		sameAgain *pool.Member      // retry on this backend with a fresh connection
		stale     bool              // the one stale-connection repeat was used
	)
	budget := c.Pool.Budget()
	budget.Request(start)
	for {
		c.Pick.Exclude = tried
		var b *backend.Backend
		var err error
		switch {
		case sameAgain != nil:
			b = sameAgain.Backend
		case c.Pinned >= 0 && attempt == 0:
			b = snap.Members[c.Pinned].Backend
		default:
			b, err = snap.Picker.Pick(&c.Pick)
			// Avoid every backend already tried, not only the last one,
			// while another is available.
			for k := 0; err == nil && k < len(snap.Members) && k < 4 && triedBefore(&triedList, attempt, b); k++ {
				c.Pick.Exclude = b
				b, err = snap.Picker.Pick(&c.Pick)
			}
		}
		if err != nil {
			if lastKind == None {
				return w.Refuse(c, false, snap.Usable)
			}
			break
		}
		mem := c.acquire(b)
		if mem == nil {
			if lastKind == None {
				return w.Refuse(c, true, snap.Usable)
			}
			break
		}
		lastMem = mem
		if attempt > 0 {
			c.Retries = attempt
			if c.Metrics != nil {
				c.Metrics.RetryAttempt()
			}
		}
		fresh := sameAgain != nil
		sameAgain = nil
		res := w.Attempt(c, mem, fresh)
		switch res.Kind {
		case None, Client, TooLarge:
			return res.Keep
		case Stale:
			// Other idle connections to this backend are likely stale too.
			mem.Conns.CloseIdle()
			if !stale && c.Replayable && c.Idempotent && !c.Upgrade {
				// Like net/http's Transport: repeat once on a fresh
				// connection to the same backend, outside retries and budget.
				stale = true
				sameAgain = mem
				continue
			}
			res.Kind = Reset
		}
		lastKind, lastErr = res.Kind, res.Err
		if !c.canRetry(res.Kind, attempt, cfg.Retries) {
			break
		}
		// A connect failure never reached a backend, so retrying it adds no
		// load to one: only retries of requests that may have been
		// processed draw on the budget.
		if res.Kind != Connect && !budget.TryRetry(time.Now()) {
			if c.Metrics != nil {
				c.Metrics.RetryBudgetExhausted()
			}
			break
		}
		if c.Observer != nil {
			c.Observer.Retrying(attempt+1, mem, res.Kind, res.Err)
		}
		tried = mem.Backend
		if attempt < len(triedList) {
			triedList[attempt] = mem.Backend.State
		}
		attempt++
	}
	status := 502
	if lastKind == Timeout {
		status = 504
	}
	w.Fail(status, lastMem, lastErr)
	return false
}

// triedBefore reports whether b served one of the first n attempts.
func triedBefore(list *[4]*backend.State, n int, b *backend.Backend) bool {
	for i := 0; i < n && i < len(list); i++ {
		if list[i] == b.State {
			return true
		}
	}
	return false
}

// canRetry decides whether a failed attempt may be repeated on another
// backend: only before any response byte arrived, only with a replayable
// body, and for a non-idempotent request only if it never reached a backend.
func (c *Call) canRetry(kind Kind, attempt, retries int) bool {
	if attempt >= retries || c.Upgrade {
		return false
	}
	switch kind {
	case Connect:
		return c.Replayable || !c.BodyStarted
	case Timeout, Reset:
		return c.Replayable && c.Idempotent
	}
	return false
}
