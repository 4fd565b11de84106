package fhir

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Retry defaults. Every request the client sends is an idempotent GET, so a
// transient failure may be tried again; the bounds keep the load on a
// struggling EHR low, as Epic asks of apps.
const (
	DefaultMaxAttempts  = 3
	DefaultRetryBase    = 250 * time.Millisecond
	DefaultMaxRetryWait = 5 * time.Second
)

// publicThrottled is the clinician-facing text of a 429 answer.
const publicThrottled = "The EHR is busy and asked the app to slow down. Try again in a minute."

func (c *Client) maxAttempts() int {
	if c.MaxAttempts > 0 {
		return c.MaxAttempts
	}
	return DefaultMaxAttempts
}

func (c *Client) retryBase() time.Duration {
	if c.RetryBase > 0 {
		return c.RetryBase
	}
	return DefaultRetryBase
}

func (c *Client) maxRetryWait() time.Duration {
	if c.MaxRetryWait > 0 {
		return c.MaxRetryWait
	}
	return DefaultMaxRetryWait
}

func (c *Client) clock() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *Client) random() float64 {
	if c.rand != nil {
		return c.rand()
	}
	return rand.Float64()
}

// wait sleeps for d or until ctx ends.
func (c *Client) wait(ctx context.Context, d time.Duration) error {
	if c.sleep != nil {
		return c.sleep(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// retryable reports whether a failed GET may be sent again: throttling,
// gateway and unavailable answers, and failures to reach the server at all.
// Timeouts are not retried: the request already used its whole time budget.
func (e *Error) retryable() bool {
	switch e.Status {
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	case 0:
		return e.transient
	default:
		return false
	}
}

// parseRetryAfter reads a Retry-After value: delay-seconds or an HTTP date.
// A date in the past means no wait.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 {
			return 0, false
		}
		// Guard the multiplication: a huge number is simply "too long".
		if n > int64(time.Hour/time.Second) {
			return time.Hour, true
		}
		return time.Duration(n) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return max(t.Sub(now), 0), true
}

// backoff is the wait after the attempt-th failed try (1-based), and false
// when the server asked for a longer pause than MaxRetryWait.
func (c *Client) backoff(attempt int, fe *Error) (time.Duration, bool) {
	if d, ok := parseRetryAfter(fe.retryAfter, c.clock()); ok {
		return d, d <= c.maxRetryWait()
	}
	d := c.retryBase() << min(attempt-1, 16)
	d = min(d, c.maxRetryWait())
	// Equal jitter: half fixed, half random, so the retries of many launches
	// hitting the same fault spread out instead of arriving together.
	return d/2 + time.Duration(c.random()*float64(d/2)), true
}

// fitsDeadline reports whether waiting d still leaves time before ctx's deadline.
func fitsDeadline(ctx context.Context, d time.Duration) bool {
	dl, ok := ctx.Deadline()
	return !ok || time.Until(dl) > d
}

// retry runs op, and runs it again after a jittered, exponentially growing
// wait (or the server's Retry-After) while it fails with a retryable *Error,
// at most MaxAttempts times in all and never past ctx's deadline. The last
// error is returned with its Attempts set.
func (c *Client) retry(ctx context.Context, op func(context.Context) error) error {
	for attempt := 1; ; attempt++ {
		err := op(ctx)
		var fe *Error
		if err == nil || !errors.As(err, &fe) {
			return err
		}
		fe.Attempts = attempt
		if !fe.retryable() || attempt >= c.maxAttempts() || ctx.Err() != nil {
			return err
		}
		d, ok := c.backoff(attempt, fe)
		if !ok || !fitsDeadline(ctx, d) {
			return err
		}
		if c.wait(ctx, d) != nil {
			return err
		}
	}
}

// retrying wraps fetch so that transient failures of a page are retried.
func (c *Client) retrying(fetch fetchFunc) fetchFunc {
	return func(ctx context.Context, u *url.URL) (*page, *wireOperationOutcome, error) {
		var (
			p  *page
			oo *wireOperationOutcome
		)
		err := c.retry(ctx, func(ctx context.Context) error {
			var err error
			p, oo, err = fetch(ctx, u)
			return err
		})
		return p, oo, err
	}
}
