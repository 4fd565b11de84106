package server_test

import (
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"smartlabs/server/config"
	"smartlabs/server/ehrsim"
	"smartlabs/server/servertest"
)

// testClock is an adjustable clock shared by the app and, unless told
// otherwise, the simulator. It stands still unless the test moves it.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newTestClock() *testClock { return &testClock{t: servertest.Epoch} }

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// outlastClockJumps makes the session outlive the clock jumps of a token
// test: sessions end on the app's clock, and these tests move it by hours at
// once where a user would have kept the session alive all along.
func outlastClockJumps(c *config.Config) {
	c.Session.IdleTimeout, c.Session.Lifetime = 24*time.Hour, 24*time.Hour
}

// The anti-forgery header HTMX sends (server/middleware.go).
const (
	csrfHeader = "X-Smartlabs-CSRF"
	csrfValue  = "1"
)

// htmxGet sends an HTMX request from the app's own page, as htmx does.
func htmxGet(t *testing.T, b *browser, u string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("HX-Request", "true")
	req.Header.Set(csrfHeader, csrfValue)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	resp, err := b.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(body)
}

// authorizedSearches counts Observation searches the simulator answered 200 to a valid token.
func authorizedSearches(h *harness) int {
	n := 0
	for _, r := range h.Sim.Requests() {
		if r.Path == "/fhir/R4/Observation" && r.Authorized && r.Status == http.StatusOK {
			n++
		}
	}
	return n
}

// mustRows asks for the launch's labs afresh from the EHR (the Refresh
// fragment, which bypasses any cache) and fails unless the answer is a good
// view and the EHR served the search to a valid token.
func mustRows(t *testing.T, h *harness, b *browser, labsURL string) {
	t.Helper()
	before := authorizedSearches(h)
	resp, body := htmxGet(t, b, labsURL+"/labs")
	if resp.StatusCode != http.StatusOK || strings.Contains(body, `data-testid="error-title"`) {
		t.Fatalf("labs fragment: status %d, body %.300s", resp.StatusCode, body)
	}
	// The view answers once the list has rows; it is followed to the end, so
	// that the next Refresh starts a fetch of its own instead of joining this one.
	doc, err := goquery.NewDocumentFromReader(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	mustFollowPolls(t, b, h.AppURL, doc)
	for deadline := time.Now().Add(5 * time.Second); authorizedSearches(h) <= before; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the view was answered without an authorized search at the EHR")
		}
	}
}

// refreshTokenOf returns the refresh token last saved for the launch at labsURL.
func refreshTokenOf(t *testing.T, h *harness, labsURL string) string {
	t.Helper()
	id := labsURL[strings.LastIndex(labsURL, "/")+1:]
	for _, rec := range h.LaunchRecords() {
		if rec["id"] == id {
			s, _ := rec["refresh_token"].(string)
			return s
		}
	}
	t.Fatalf("no launch record for %s", id)
	return ""
}

func TestTokenRefresh(t *testing.T) {
	t.Run("ahead of expiry and after it, with rotated refresh tokens", func(t *testing.T) {
		clk := newTestClock()
		h := newHarness(t, harnessOptions{Now: clk.now, Mutate: outlastClockJumps})
		b := newBrowser(t)
		resp, _ := mustLaunch(t, h, b, h.Patient("Lin"))
		labsURL := resp.Request.URL.String()
		if n := h.CountSimRequests("/oauth2/token"); n != 1 {
			t.Fatalf("token requests after launch = %d, want 1", n)
		}
		rt0 := refreshTokenOf(t, h, labsURL)
		if rt0 == "" {
			t.Fatal("no refresh token saved: online_access was not asked for")
		}
		steps := []struct {
			advance    time.Duration
			wantTokens int
		}{
			{advance: 10 * time.Minute, wantTokens: 1},                // fresh token: no refresh
			{advance: 49*time.Minute + 30*time.Second, wantTokens: 2}, // expires within 60 s: refreshed ahead
			{advance: 2 * time.Hour, wantTokens: 3},                   // expired: refreshed with the rotated token
			{advance: 2 * time.Hour, wantTokens: 4},                   // and again
		}
		prev := rt0
		for i, st := range steps {
			clk.add(st.advance)
			mustRows(t, h, b, labsURL)
			if n := h.CountSimRequests("/oauth2/token"); n != st.wantTokens {
				t.Fatalf("step %d: token requests = %d, want %d", i, n, st.wantTokens)
			}
			rt := refreshTokenOf(t, h, labsURL)
			if rotated := rt != prev; rotated != (i > 0) {
				t.Errorf("step %d: refresh token rotated = %v", i, rotated)
			}
			prev = rt
		}
	})

	t.Run("401 from the EHR refreshes and retries once", func(t *testing.T) {
		app, ehr := newTestClock(), newTestClock()
		h := newHarness(t, harnessOptions{Now: app.now, SimNow: ehr.now})
		b := newBrowser(t)
		resp, _ := mustLaunch(t, h, b, h.Patient("Lin"))
		// The EHR's clock runs two hours ahead: it refuses a token the app thinks is fine.
		ehr.add(2 * time.Hour)
		mustRows(t, h, b, resp.Request.URL.String())
		if n := h.CountSimRequests("/oauth2/token"); n != 2 {
			t.Errorf("token requests = %d, want 2 (exchange + one refresh)", n)
		}
	})

	t.Run("short-lived tokens, running clock", func(t *testing.T) {
		h := newHarness(t, harnessOptions{Switches: ehrsim.Switches{TokenLifetime: 2 * time.Second}})
		b := newBrowser(t)
		resp, _ := mustLaunch(t, h, b, h.Patient("Lin"))
		h.Clock.Add(3 * time.Second) // the token has expired, whatever the launch took
		for range 2 {
			mustRows(t, h, b, resp.Request.URL.String())
		}
		// Each view found a token expiring within a minute and refreshed it,
		// so each used the refresh token the previous one saved.
		if n := h.CountSimRequests("/oauth2/token"); n < 3 {
			t.Errorf("token requests = %d, want at least 3", n)
		}
	})
}

// TestSessionEnded: a refused or missing refresh token ends the launch with a
// plain 401 page; HTMX gets an HX-Redirect to the full page, which shows it too.
func TestSessionEnded(t *testing.T) {
	noRefreshScopes := "launch openid fhirUser patient/Patient.read patient/Observation.read"
	tests := []struct {
		name     string
		switches ehrsim.Switches
		scopes   string
		advance  time.Duration
		// wantTokenRequests is how many token requests the whole test makes.
		wantTokenRequests int
	}{
		{name: "refresh token revoked", switches: ehrsim.Switches{RevokeRefresh: true}, advance: 2 * time.Hour, wantTokenRequests: 2},
		{name: "no refresh token", scopes: noRefreshScopes, advance: 2 * time.Hour, wantTokenRequests: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newTestClock()
			h := newHarness(t, harnessOptions{Now: clk.now, Switches: tt.switches, Mutate: func(c *config.Config) {
				c.Issuers[0].Scopes = tt.scopes
				outlastClockJumps(c)
			}})
			b := newBrowser(t)
			resp, _ := mustLaunch(t, h, b, h.Patient("Lin"))
			labsURL := resp.Request.URL.String()
			clk.add(tt.advance)

			r, body := htmxGet(t, b, labsURL+"/labs")
			if r.StatusCode != http.StatusUnauthorized || r.Header.Get("HX-Redirect") != resp.Request.URL.Path {
				t.Errorf("HTMX: status %d, HX-Redirect %q, want 401 and %q", r.StatusCode, r.Header.Get("HX-Redirect"), resp.Request.URL.Path)
			}
			if strings.Contains(body, "error-title") || r.Header.Get("Location") != "" {
				t.Errorf("HTMX: got a fragment or a Location header, want only HX-Redirect")
			}
			// The full page the HX-Redirect leads to shows the ended page: no loop, no 5xx.
			for range 2 {
				r, doc, _ := b.noRedirect().get(labsURL)
				if r.StatusCode != http.StatusUnauthorized || text(doc, "error-title") != "Your smartlabs session has ended" ||
					!strings.Contains(text(doc, "error-message"), "Reopen smartlabs from the patient's chart") {
					t.Errorf("full page: status %d, title %q", r.StatusCode, text(doc, "error-title"))
				}
				if loc := r.Header.Get("Location"); loc != "" {
					t.Errorf("full page redirects to %q", loc)
				}
			}
			if n := h.CountSimRequests("/oauth2/token"); n != tt.wantTokenRequests {
				t.Errorf("token requests = %d, want %d (an ended launch asks the EHR no more)", n, tt.wantTokenRequests)
			}
			for _, s := range h.LaunchRecords() {
				if s["access_token"] != nil && s["access_token"] != "" {
					t.Errorf("ended launch still holds an access token")
				}
			}
		})
	}

	t.Run("no refresh token, last minute of a valid token still used", func(t *testing.T) {
		clk := newTestClock()
		h := newHarness(t, harnessOptions{Now: clk.now, Mutate: func(c *config.Config) {
			c.Issuers[0].Scopes = noRefreshScopes
			outlastClockJumps(c)
		}})
		b := newBrowser(t)
		resp, _ := mustLaunch(t, h, b, h.Patient("Lin"))
		clk.add(59*time.Minute + 30*time.Second)
		mustRows(t, h, b, resp.Request.URL.String())
	})
}
