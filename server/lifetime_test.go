package server_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"smartlabs/server/config"
	"smartlabs/server/servertest"
	"smartlabs/server/session"
)

// sessionStores are the two session stores a lifetime test runs on: a
// subtest's name and the Redis URL ("" for memory).
func sessionStores(t *testing.T) []struct{ name, redisURL string } {
	return []struct{ name, redisURL string }{
		{"memory", ""},
		{"redis", servertest.StartRedis(t).URL},
	}
}

// viewStatus loads the labs page at u without following redirects.
func viewStatus(b *browser, u string) int {
	r, _, _ := b.noRedirect().get(u)
	return r.StatusCode
}

// TestIdleTimeout: session.idle_timeout ends a session left alone that long on
// the app's clock; activity keeps it alive past that period. The clock moves
// only when the test moves it, so neither machine speed nor the size of a
// page can make a visit land late.
func TestIdleTimeout(t *testing.T) {
	t.Parallel()
	for _, store := range sessionStores(t) {
		t.Run(store.name, func(t *testing.T) {
			t.Parallel()
			clk := newTestClock()
			h := newHarness(t, harnessOptions{Now: clk.now, RedisURL: store.redisURL})
			idle := h.Cfg.Session.IdleTimeout
			b := newBrowser(t)
			resp, _ := mustLaunch(t, h, b, h.Patient("Reyes"))
			labsURL := resp.Request.URL.String()
			for i := range 4 {
				clk.add(idle - time.Second)
				if st := viewStatus(b, labsURL); st != http.StatusOK {
					t.Fatalf("visit %d, %v after the last: status %d, want 200", i+1, idle-time.Second, st)
				}
			}
			clk.add(idle)
			if st := viewStatus(b, labsURL); st != http.StatusNotFound {
				t.Errorf("after %v idle: status %d, want 404", idle, st)
			}
		})
	}
}

// TestAbsoluteLifetime: session.lifetime ends the session that long after
// sign-in on the app's clock, however active it is.
func TestAbsoluteLifetime(t *testing.T) {
	t.Parallel()
	const life = time.Hour
	for _, store := range sessionStores(t) {
		t.Run(store.name, func(t *testing.T) {
			t.Parallel()
			clk := newTestClock()
			h := newHarness(t, harnessOptions{Now: clk.now, RedisURL: store.redisURL,
				Mutate: func(c *config.Config) { c.Session.Lifetime = life }})
			b := newBrowser(t)
			resp, _ := mustLaunch(t, h, b, h.Patient("Reyes"))
			labsURL := resp.Request.URL.String()
			// Visits far closer together than the idle timeout: only the lifetime can end it.
			for _, step := range []time.Duration{10 * time.Minute, 10 * time.Minute, 10 * time.Minute, 10 * time.Minute, 10 * time.Minute, 10*time.Minute - time.Second} {
				clk.add(step)
				if st := viewStatus(b, labsURL); st != http.StatusOK {
					t.Fatalf("%v after sign-in: status %d, want 200", clk.now().Sub(servertest.Epoch), st)
				}
			}
			clk.add(time.Second)
			if st := viewStatus(b, labsURL); st != http.StatusNotFound {
				t.Errorf("%v after sign-in: status %d, want 404", life, st)
			}
		})
	}
}

// TestIdleTimeoutRealTime is the one session-expiry test on real time: with
// Redis and the real clock, a session left alone past its idle timeout is
// refused and gone from Redis, whose own TTL outlasts the timeout. The
// margins are seconds: a slow machine only lets more time pass.
func TestIdleTimeoutRealTime(t *testing.T) {
	t.Parallel()
	const idle = 5 * time.Second
	rs := servertest.StartRedis(t)
	h := newHarness(t, harnessOptions{Now: time.Now, RedisURL: rs.URL,
		Mutate: func(c *config.Config) { c.Session.IdleTimeout = idle }})
	b := newBrowser(t)
	resp, _, _ := b.get(h.LaunchURL(h.Patient("Reyes").ID))
	if resp.StatusCode != http.StatusOK || !labsPathRe.MatchString(resp.Request.URL.Path) {
		t.Fatalf("launch ended with %d at %s", resp.StatusCode, resp.Request.URL.Path)
	}
	signedIn := time.Now()

	rc := redis.NewClient(&redis.Options{Addr: rs.Addr})
	t.Cleanup(func() { rc.Close() })
	ctx := context.Background()
	keys, err := rc.Keys(ctx, session.RedisSessionPrefix+"*").Result()
	if err != nil || len(keys) != 1 {
		t.Fatalf("session keys in Redis: %q, %v; want one", keys, err)
	}
	if ttl, err := rc.PTTL(ctx, keys[0]).Result(); err != nil || ttl <= idle {
		t.Errorf("Redis keeps the session %v (%v), want longer than the %v idle timeout", ttl, err, idle)
	}

	time.Sleep(idle + 3*time.Second)
	if st := viewStatus(b, resp.Request.URL.String()); st != http.StatusNotFound {
		t.Errorf("%v after sign-in with a %v idle timeout: status %d, want 404", time.Since(signedIn).Round(time.Second), idle, st)
	}
	if n, err := rc.Exists(ctx, keys[0]).Result(); err != nil || n != 0 {
		t.Errorf("the ended session is still in Redis (%d, %v)", n, err)
	}
}
