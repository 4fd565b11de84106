package smart

import (
	"context"
	"sync"
	"time"
)

// ttlCache caches values per key for a time-to-live, and lets concurrent callers
// for one key share a single fetch.
type ttlCache[T any] struct {
	mu    sync.Mutex
	items map[string]cacheEntry[T]
	calls map[string]*flight[T]
}

type cacheEntry[T any] struct {
	val T
	at  time.Time
}

// flight is one fetch in progress; done closes when val and err are set.
type flight[T any] struct {
	done chan struct{}
	val  T
	err  error
}

// get returns the cached value for key when it is younger than ttl (and fresh is
// false), else fetches it once for all concurrent callers and caches a success.
func (c *ttlCache[T]) get(ctx context.Context, key string, now time.Time, ttl time.Duration, fresh bool, fetch func(context.Context) (T, error)) (T, error) {
	c.mu.Lock()
	if c.items == nil {
		c.items = make(map[string]cacheEntry[T])
		c.calls = make(map[string]*flight[T])
	}
	if e, ok := c.items[key]; ok && !fresh && now.Sub(e.at) < ttl && !now.Before(e.at) {
		c.mu.Unlock()
		return e.val, nil
	}
	if f, ok := c.calls[key]; ok {
		c.mu.Unlock()
		select {
		case <-f.done:
			return f.val, f.err
		case <-ctx.Done():
			var zero T
			return zero, &Error{Kind: KindUnreachable, Public: publicUnreachable, Err: ctx.Err()}
		}
	}
	f := &flight[T]{done: make(chan struct{})}
	c.calls[key] = f
	c.mu.Unlock()

	// The deferred cleanup runs even if fetch panics, so waiters are never stranded.
	defer func() {
		c.mu.Lock()
		delete(c.calls, key)
		if f.err == nil {
			c.items[key] = cacheEntry[T]{val: f.val, at: now}
		}
		c.mu.Unlock()
		close(f.done)
	}()
	f.err = errPanicked
	f.val, f.err = fetch(ctx)
	return f.val, f.err
}

// errPanicked is what waiters see if the shared fetch panicked.
var errPanicked = &Error{Kind: KindBadServer, Public: publicBadServer}
