package server_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"

	"smartlabs/server/config"
)

// The limits in server/ratelimit.go.
const (
	perBrowserLimit = 30
	perIPLimit      = 600
)

// unknownIssLaunch is a /launch that fails fast (400) after the rate limiter.
var unknownIssLaunch = "/launch?iss=" + url.QueryEscape("https://unknown.example/fhir")

// hit sends one request to the app's handler from peer with X-Forwarded-For xff.
func hit(h *harness, path, peer, xff string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, h.AppURL+path, nil)
	req.RemoteAddr = peer + ":40000"
	if xff != "" {
		req.Header.Set("X-Forwarded-For", xff)
	}
	rec := httptest.NewRecorder()
	h.Handler.ServeHTTP(rec, req)
	return rec
}

func checkTooMany(t *testing.T, rec *httptest.ResponseRecorder) {
	t.Helper()
	if rec.Code != http.StatusTooManyRequests {
		t.Fatalf("status %d, want 429", rec.Code)
	}
	ra, err := strconv.Atoi(rec.Header().Get("Retry-After"))
	if err != nil || ra < 1 || ra > 60 {
		t.Errorf("Retry-After = %q, want 1..60 seconds", rec.Header().Get("Retry-After"))
	}
	doc, _ := goquery.NewDocumentFromReader(rec.Body)
	if !strings.Contains(text(doc, "error-message"), "Wait a minute") {
		t.Errorf("429 page says %q", text(doc, "error-message"))
	}
}

// TestRateLimitPerIP: the per-IP ceiling counts the socket peer, or behind a
// trusted proxy the right-most untrusted X-Forwarded-For entry.
func TestRateLimitPerIP(t *testing.T) {
	tests := []struct {
		name    string
		proxies []string
		// fill is the peer and X-Forwarded-For of the requests that use up the ceiling;
		// xffFor(i) varies the header per request when set.
		peer   string
		xffFor func(i int) string
		// then are requests after the ceiling and whether each must be refused.
		then []struct {
			peer, xff string
			limited   bool
		}
	}{
		{
			name: "no trusted proxy: the peer counts, forwarded headers change nothing",
			peer: "192.0.2.1", xffFor: func(i int) string { return "198.51.100." + strconv.Itoa(i%250) },
			then: []struct {
				peer, xff string
				limited   bool
			}{
				{"192.0.2.1", "203.0.113.99", true},
				{"192.0.2.1", "", true},
				{"192.0.2.2", "", false},
			},
		},
		{
			name:    "trusted proxy: the forwarded client counts",
			proxies: []string{"192.0.2.0/29"},
			peer:    "192.0.2.1", xffFor: func(int) string { return "198.51.100.7" },
			then: []struct {
				peer, xff string
				limited   bool
			}{
				{"192.0.2.1", "198.51.100.7", true},
				{"192.0.2.3", "198.51.100.7", true},                // another trusted proxy, same client
				{"192.0.2.1", "198.51.100.8", false},               // another client behind the proxy
				{"192.0.2.1", "198.51.100.7, 198.51.100.9", false}, // right-most untrusted entry is the client
				{"192.0.2.1", "198.51.100.9, 198.51.100.7", true},  // a spoofed left entry changes nothing
				{"203.0.113.5", "198.51.100.7", false},             // an untrusted peer's header is ignored
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, harnessOptions{Mutate: func(c *config.Config) { c.TrustedProxies = tt.proxies }})
			for i := range perIPLimit {
				if rec := hit(h, unknownIssLaunch, tt.peer, tt.xffFor(i)); rec.Code != http.StatusBadRequest {
					t.Fatalf("request %d under the ceiling: status %d, want 400", i, rec.Code)
				}
			}
			for _, r := range tt.then {
				rec := hit(h, unknownIssLaunch, r.peer, r.xff)
				if r.limited {
					checkTooMany(t, rec)
				} else if rec.Code != http.StatusBadRequest {
					t.Errorf("peer %s xff %q: status %d, want 400 (not limited)", r.peer, r.xff, rec.Code)
				}
			}
		})
	}
}

// TestRateLimitPerBrowser: /launch and /callback are limited per browser
// session, well below the per-IP ceiling, and another browser behind the same
// address is not affected.
func TestRateLimitPerBrowser(t *testing.T) {
	for _, path := range []string{unknownIssLaunch, "/callback?state=unknown-state&code=x"} {
		t.Run(path[:strings.Index(path, "?")], func(t *testing.T) {
			h := newHarness(t, harnessOptions{})
			b := newBrowser(t)
			mustLaunch(t, h, b, h.Patient("Lin")) // gives the browser its session
			nb := b.noRedirect()
			limited := 0
			allowed := 0
			for range perBrowserLimit + 5 {
				r, _, _ := nb.get(h.AppURL + path)
				switch r.StatusCode {
				case http.StatusTooManyRequests:
					limited++
					if r.Header.Get("Retry-After") == "" {
						t.Error("429 without Retry-After")
					}
				case http.StatusBadRequest:
					if limited > 0 {
						t.Fatal("allowed again after being limited")
					}
					allowed++
				default:
					t.Fatalf("status %d", r.StatusCode)
				}
			}
			// mustLaunch used one /launch and one /callback of this browser's allowance.
			if allowed != perBrowserLimit-1 || limited != 6 {
				t.Errorf("allowed %d then limited %d, want %d then 6", allowed, limited, perBrowserLimit-1)
			}
			other := newBrowser(t)
			mustLaunch(t, h, other, h.Patient("Lin"))
			if r, _, _ := other.noRedirect().get(h.AppURL + path); r.StatusCode != http.StatusBadRequest {
				t.Errorf("another browser from the same address: %d, want 400", r.StatusCode)
			}
		})
	}
}

// TestAbandonedLaunchesStaySmall: a browser that starts launch after launch
// and never finishes gets at most 20 sign-ins in progress, and its cookie never grows.
func TestAbandonedLaunchesStaySmall(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	orig := newBrowser(t)
	b := orig.noRedirect() // records into orig
	standalone := h.AppURL + "/launch?iss=" + url.QueryEscape(h.Sim.ISS())
	started, refused := 0, 0
	for range 100 {
		r, _, body := b.get(standalone)
		if r.StatusCode == http.StatusSeeOther { // the cookie check, once
			r, _, body = b.get(h.AppURL + r.Header.Get("Location"))
		}
		switch {
		case r.StatusCode == http.StatusFound && strings.HasPrefix(r.Header.Get("Location"), h.SimURL):
			started++
		case r.StatusCode == http.StatusTooManyRequests:
			refused++
			if !strings.Contains(body, "Too many sign-ins") {
				t.Errorf("429 page does not explain: %.200s", body)
			}
		default:
			t.Fatalf("launch: status %d", r.StatusCode)
		}
	}
	if started != 20 || refused != 80 {
		t.Errorf("started %d, refused %d; want 20 and 80", started, refused)
	}
	seen := orig.exchanges()
	if len(seen) < 100 {
		t.Fatalf("recorded %d exchanges, want at least 100", len(seen))
	}
	for _, ex := range seen {
		if ex.Status == http.StatusRequestHeaderFieldsTooLarge {
			t.Fatal("431 Request Header Fields Too Large")
		}
		for _, sc := range ex.Header.Values("Set-Cookie") {
			if len(sc) >= 200 {
				t.Errorf("Set-Cookie of %d bytes", len(sc))
			}
		}
		if n := len(ex.Request.Get("Cookie")); n >= 200 {
			t.Errorf("Cookie request header of %d bytes", n)
		}
	}

	// A completed launch frees its slot: a browser that finishes its sign-ins is never refused.
	done := newBrowser(t)
	for range 21 {
		mustLaunch(t, h, done, h.Patient("Lin"))
	}
}
