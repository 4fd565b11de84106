package fhir

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"
)

// mustAcquire takes a place in g or fails the test.
func mustAcquire(t *testing.T, g *Gate) ticket {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	tk, err := g.acquire(ctx)
	if err != nil {
		t.Fatalf("acquire: %v", err)
	}
	return tk
}

// blocked reports whether acquire would wait: it tries with a context that
// has already ended.
func blocked(g *Gate) bool {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	tk, err := g.acquire(ctx)
	if err == nil {
		g.release(tk, outcomeNeutral)
		return false
	}
	return true
}

var (
	errThrottled   = &Error{Kind: KindUpstream, Status: http.StatusTooManyRequests}
	errUnavailable = &Error{Kind: KindUpstream, Status: http.StatusServiceUnavailable, retryAfter: "1"}
	errDown        = &Error{Kind: KindUpstream, Status: http.StatusServiceUnavailable}
)

func TestOutcomeOf(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want outcome
	}{
		{nil, outcomeSuccess},
		{errThrottled, outcomeThrottled},
		{errUnavailable, outcomeThrottled},
		{errDown, outcomeNeutral},
		{&Error{Kind: KindUpstream, Status: 500}, outcomeNeutral},
		{errors.New("x"), outcomeNeutral},
	} {
		if got := outcomeOf(tt.err); got != tt.want {
			t.Errorf("outcomeOf(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

// TestGateBounds: no more than the limit at once; a freed place goes to the
// first waiter; a waiter whose context ends leaves no place taken.
func TestGateBounds(t *testing.T) {
	g := NewGate(2)
	a, b := mustAcquire(t, g), mustAcquire(t, g)
	if !blocked(g) {
		t.Fatal("a third request was admitted under a bound of 2")
	}
	got := make(chan int, 2)
	for i := range 2 {
		go func() {
			// The waiter keeps its place: the test ends with both taken.
			if _, err := g.acquire(context.Background()); err != nil {
				t.Errorf("acquire: %v", err)
			}
			got <- i
		}()
		// Wait until the waiter queues, so the order is known.
		for deadline := time.Now().Add(5 * time.Second); ; {
			g.mu.Lock()
			n := g.waiters.Len()
			g.mu.Unlock()
			if n == i+1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the waiter never queued")
			}
			time.Sleep(time.Millisecond)
		}
	}
	g.release(a, outcomeNeutral)
	if first := <-got; first != 0 {
		t.Errorf("waiter %d was admitted first", first)
	}
	g.release(b, outcomeNeutral)
	<-got
	g.mu.Lock()
	inFlight, waiting := g.inFlight, g.waiters.Len()
	g.mu.Unlock()
	if inFlight != 2 || waiting != 0 {
		t.Errorf("in flight %d, waiting %d; want 2, 0", inFlight, waiting)
	}
	var nilGate *Gate
	if _, err := nilGate.acquire(context.Background()); err != nil || nilGate.Limit() != 0 {
		t.Error("a nil Gate does not admit everything")
	}
}

// TestGateAIMD: a throttled answer halves the bound, once per round (the
// other answers of the same burst do not lower it again); successes raise it
// one at a time, quickly up to just below the level that was throttled, then
// only after a long run; it never falls below 1 nor rises above the maximum.
func TestGateAIMD(t *testing.T) {
	g := NewGate(8)
	var burst []ticket
	for range 8 {
		burst = append(burst, mustAcquire(t, g))
	}
	for _, tk := range burst[:3] {
		g.release(tk, outcomeThrottled)
	}
	if got := g.Limit(); got != 4 {
		t.Fatalf("after a burst of 429s the limit is %d, want 4 (halved once)", got)
	}
	for _, tk := range burst[3:] {
		g.release(tk, outcomeNeutral)
	}
	// Below the throttled level (8) the limit climbs by one per limit successes.
	succeed := func(n int) {
		for range n {
			g.release(mustAcquire(t, g), outcomeSuccess)
		}
	}
	succeed(4)
	if got := g.Limit(); got != 5 {
		t.Errorf("after 4 successes at 4 the limit is %d, want 5", got)
	}
	succeed(5 + 6)
	if got := g.Limit(); got != 7 {
		t.Errorf("the limit is %d, want 7 (just below the throttled 8)", got)
	}
	succeed(7*gateStepAtCeiling - 1)
	if got := g.Limit(); got != 7 {
		t.Errorf("the limit passed 7 after %d successes: %d", 7*gateStepAtCeiling-1, got)
	}
	succeed(1)
	if got := g.Limit(); got != 8 {
		t.Errorf("after a long run the limit is %d, want 8", got)
	}
	succeed(100)
	if got := g.Limit(); got != 8 {
		t.Errorf("the limit rose above the maximum: %d", got)
	}
	for range 5 {
		g.release(mustAcquire(t, g), outcomeThrottled)
	}
	if got := g.Limit(); got != 1 {
		t.Errorf("after repeated throttling the limit is %d, want 1", got)
	}
	// A 503 with Retry-After throttles as a 429 does.
	g2 := NewGate(4)
	g2.release(mustAcquire(t, g2), outcomeOf(errUnavailable))
	if got := g2.Limit(); got != 2 {
		t.Errorf("after a 503 with Retry-After the limit is %d, want 2", got)
	}
}
