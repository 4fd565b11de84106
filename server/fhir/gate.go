package fhir

import (
	"container/list"
	"context"
	"errors"
	"net/http"
	"sync"
)

// Gate bounds the requests in flight to an EHR, and adapts the bound to the
// EHR's answers like TCP's congestion window (AIMD): a throttled answer (429,
// or 503 with Retry-After) halves it, successes raise it by one at a time.
// One Gate is shared by every launch at an issuer (the per-issuer bound), and
// each sliced search has its own (the per-launch bound). A nil *Gate admits
// everything. Waiters are admitted in the order they came.
type Gate struct {
	mu sync.Mutex
	// max is the configured bound; limit the current one, 1..max.
	max, limit int
	inFlight   int
	waiters    list.List // of chan struct{}
	// epoch counts decreases: a throttled answer to a request admitted before
	// the last decrease does not lower the bound again, so one burst of 429s
	// halves it once.
	epoch uint64
	// ceiling is the limit that was last throttled (0: none); the bound
	// climbs quickly back to just below it and probes past it only slowly.
	ceiling   int
	successes int
}

// Increase pacing: successes needed per step, as a multiple of the current
// limit: quickly below the last throttled level, slowly at or above it.
const (
	gateStepBelowCeiling = 1
	gateStepAtCeiling    = 16
)

// NewGate returns a Gate admitting at most limit requests at once (at least 1).
func NewGate(limit int) *Gate {
	n := max(limit, 1)
	return &Gate{max: n, limit: n}
}

// Limit is the current bound.
func (g *Gate) Limit() int {
	if g == nil {
		return 0
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.limit
}

// ticket is one admission; its epoch is the Gate's at admission.
type ticket struct {
	epoch uint64
}

// acquire waits until a request may be sent, or ctx ends.
func (g *Gate) acquire(ctx context.Context) (ticket, error) {
	if g == nil {
		return ticket{}, nil
	}
	g.mu.Lock()
	if g.inFlight < g.limit && g.waiters.Len() == 0 {
		g.inFlight++
		t := ticket{g.epoch}
		g.mu.Unlock()
		return t, nil
	}
	ready := make(chan struct{})
	el := g.waiters.PushBack(ready)
	g.mu.Unlock()
	select {
	case <-ready:
		g.mu.Lock()
		defer g.mu.Unlock()
		return ticket{g.epoch}, nil
	case <-ctx.Done():
		g.mu.Lock()
		defer g.mu.Unlock()
		select {
		case <-ready:
			// Admitted just as ctx ended: hand the place on.
			g.inFlight--
			g.wakeLocked()
		default:
			g.waiters.Remove(el)
		}
		return ticket{}, ctx.Err()
	}
}

// outcome is what the EHR's answer says about its load.
type outcome int

const (
	outcomeNeutral   outcome = iota // a failure that says nothing about load
	outcomeSuccess                  // a 2xx answer
	outcomeThrottled                // 429, or 503 with Retry-After
)

// outcomeOf classifies the result of one request.
func outcomeOf(err error) outcome {
	if err == nil {
		return outcomeSuccess
	}
	var fe *Error
	if !errors.As(err, &fe) {
		return outcomeNeutral
	}
	// A 503 without Retry-After may be an outage rather than load; a 429
	// always asks the app to slow down.
	if fe.Status == http.StatusTooManyRequests || fe.Status == http.StatusServiceUnavailable && fe.retryAfter != "" {
		return outcomeThrottled
	}
	return outcomeNeutral
}

// release ends an admission and adapts the bound to its outcome.
func (g *Gate) release(t ticket, o outcome) {
	if g == nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.inFlight--
	switch o {
	case outcomeThrottled:
		if t.epoch == g.epoch {
			g.ceiling = g.limit
			g.limit = max((g.limit+1)/2, 1)
			g.epoch++
			g.successes = 0
		}
	case outcomeSuccess:
		if g.limit >= g.max {
			break
		}
		g.successes++
		step := gateStepBelowCeiling
		if g.ceiling > 0 && g.limit+1 >= g.ceiling {
			step = gateStepAtCeiling
		}
		if g.successes >= step*g.limit {
			g.limit++
			g.successes = 0
		}
	}
	g.wakeLocked()
}

// wakeLocked admits waiters while there is room.
func (g *Gate) wakeLocked() {
	for g.inFlight < g.limit && g.waiters.Len() > 0 {
		el := g.waiters.Front()
		g.waiters.Remove(el)
		g.inFlight++
		close(el.Value.(chan struct{}))
	}
}
