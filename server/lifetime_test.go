package server_test

import (
	"net/http"
	"testing"
	"time"

	"smartlabs/server/config"
)

// TestIdleTimeout: session.idle_timeout from the config ends a session left
// alone that long; activity keeps it alive past that period.
func TestIdleTimeout(t *testing.T) {
	t.Parallel()
	const idle = 2 * time.Second
	h := newHarness(t, harnessOptions{Mutate: func(c *config.Config) { c.Session.IdleTimeout = idle }})
	b := newBrowser(t)
	resp, _ := mustLaunch(t, h, b, h.Patient("Lin"))
	view := func() int {
		r, _, _ := b.noRedirect().get(resp.Request.URL.String())
		return r.StatusCode
	}
	for start := time.Now(); time.Since(start) < idle+time.Second; time.Sleep(400 * time.Millisecond) {
		if st := view(); st != http.StatusOK {
			t.Fatalf("active session, %v after launch: status %d, want 200", time.Since(start).Round(time.Millisecond), st)
		}
	}
	time.Sleep(idle + 500*time.Millisecond)
	if st := view(); st != http.StatusNotFound {
		t.Errorf("after %v idle: status %d, want 404", idle+500*time.Millisecond, st)
	}
}

// TestAbsoluteLifetime: session.lifetime from the config ends the session
// that long after sign-in, however active it is.
func TestAbsoluteLifetime(t *testing.T) {
	t.Parallel()
	const life = 3 * time.Second
	h := newHarness(t, harnessOptions{Mutate: func(c *config.Config) { c.Session.IdleTimeout, c.Session.Lifetime = life, life }})
	b := newBrowser(t)
	started := time.Now() // sign-in happens after this
	resp, _ := mustLaunch(t, h, b, h.Patient("Lin"))
	signedIn := time.Now() // and before this
	for {
		r, _, _ := b.noRedirect().get(resp.Request.URL.String())
		now := time.Now()
		if r.StatusCode == http.StatusNotFound {
			if now.Before(started.Add(life)) {
				t.Errorf("ended %v after the launch began, before the %v lifetime", now.Sub(started), life)
			}
			return
		}
		if r.StatusCode != http.StatusOK {
			t.Fatalf("status %d", r.StatusCode)
		}
		if now.After(signedIn.Add(life + time.Second)) {
			t.Fatalf("still open %v after sign-in with a %v lifetime", now.Sub(signedIn), life)
		}
		// Visits far closer together than the idle timeout: only the lifetime can end it.
		time.Sleep(300 * time.Millisecond)
	}
}
