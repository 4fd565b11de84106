package server_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"

	"smartlabs/server/config"
	"smartlabs/server/ehrsim"
	"smartlabs/server/servertest"
)

// TestTokensNeverReachTheBrowser scans every response, header, cookie and URL the
// browser saw during a full launch and a refresh for any token the server holds.
func TestTokensNeverReachTheBrowser(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	b := newBrowser(t)
	resp, _ := mustLaunch(t, h, b, h.Patient("Lin"))
	b.headers.Set("HX-Request", "true")
	b.headers.Set("X-Smartlabs-CSRF", "1")
	b.get(resp.Request.URL.String() + "/labs")
	b.headers.Del("HX-Request")
	b.headers.Del("X-Smartlabs-CSRF")

	secrets := h.Secrets()
	for _, ex := range b.exchanges() {
		for _, s := range secrets {
			probe := servertest.Probe(s)
			if strings.Contains(ex.URL, probe) {
				t.Errorf("token in URL %s", ex.URL)
			}
			if strings.Contains(ex.Body, probe) {
				t.Errorf("token in body of %s", ex.URL)
			}
			for k, v := range ex.Header {
				if strings.Contains(strings.Join(v, " "), probe) {
					t.Errorf("token in header %s of %s", k, ex.URL)
				}
			}
		}
	}
}

// TestLogsHoldNoTokensOrPHI scans the application log of a full launch.
func TestLogsHoldNoTokensOrPHI(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	p := h.Patient("Lin")
	b := newBrowser(t)
	launch := h.LaunchURL(p.ID)
	resp, doc, _ := b.get(launch)
	if resp.StatusCode != 200 {
		t.Fatalf("launch: %d", resp.StatusCode)
	}
	// An error path too: a replayed launch.
	b.get(launch)
	logs := h.Logs.String()
	if !strings.Contains(logs, `"route":"/l/:launch"`) {
		t.Fatalf("log has no route pattern for the labs view: %s", logs)
	}
	forbidden := append(h.Secrets(), p.ID, p.Name, p.Family, p.BirthDate, "launch=", "code=", "state=",
		resp.Request.URL.Path, text(doc, "banner-mrn"))
	u, _ := resp.Request.URL.Parse(launch)
	forbidden = append(forbidden, u.Query().Get("launch"))
	for _, f := range forbidden {
		if f != "" && strings.Contains(logs, f) {
			t.Errorf("log contains %q", f)
		}
	}
}

func TestSecurityHeaders(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	b := newBrowser(t)
	resp, _ := mustLaunch(t, h, b, h.Patient("Lin"))
	for _, ex := range b.exchanges() {
		if !strings.HasPrefix(ex.URL, h.AppURL) {
			continue
		}
		csp := ex.Header.Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'self'", "script-src 'self'", "style-src 'self'", "object-src 'none'", "base-uri 'none'", "frame-ancestors " + h.SimURL} {
			if !strings.Contains(csp, want) {
				t.Errorf("%s: CSP %q lacks %q", ex.URL, csp, want)
			}
		}
		if strings.Contains(csp, "unsafe-inline") || ex.Header.Get("X-Frame-Options") != "" {
			t.Errorf("%s: CSP %q / XFO %q", ex.URL, csp, ex.Header.Get("X-Frame-Options"))
		}
		if ex.Header.Get("X-Content-Type-Options") != "nosniff" || ex.Header.Get("Referrer-Policy") != "no-referrer" {
			t.Errorf("%s: nosniff/referrer headers missing", ex.URL)
		}
		if ex.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("%s: Cache-Control = %q", ex.URL, ex.Header.Get("Cache-Control"))
		}
		if ex.Header.Get("Strict-Transport-Security") != "" {
			t.Errorf("%s: HSTS on an http public_url", ex.URL)
		}
	}
	if resp.Header.Get("Vary") == "" || !strings.Contains(resp.Header.Get("Vary"), "HX-Request") {
		t.Errorf("labs page Vary = %q", resp.Header.Get("Vary"))
	}
}

// TestHTMLInjection: a lab name with markup from FHIR comes out as text.
func TestHTMLInjection(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	var found bool
	for _, p := range h.Sim.Patients() {
		b := newBrowser(t)
		resp, _ := mustLaunch(t, h, b, p)
		_, doc, body := b.getList(resp.Request.URL.String() + "?view=all")
		if strings.Contains(body, "&lt;script&gt;alert(1)&lt;/script&gt;") {
			found = true
		}
		doc.Find("script").Each(func(_ int, s *goquery.Selection) {
			if src, ok := s.Attr("src"); !ok || !strings.HasPrefix(src, "/static/") {
				t.Errorf("patient %s: unexpected script element (src %q)", p.Name, src)
			}
		})
		if strings.Contains(body, "<script>alert(1)") {
			t.Errorf("patient %s: raw script tag in page", p.Name)
		}
	}
	if !found {
		t.Fatal("no patient's page shows the escaped <script> lab name: the check proves nothing")
	}
}

func TestHTMXFragment(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	b := newBrowser(t)
	resp, _ := mustLaunch(t, h, b, h.Patient("Lin"))
	b.headers.Set("HX-Request", "true")
	b.headers.Set("X-Smartlabs-CSRF", "1")
	r, doc, body := b.get(resp.Request.URL.String() + "/labs?view=all")
	if r.StatusCode != 200 {
		t.Fatalf("fragment status %d", r.StatusCode)
	}
	if strings.Contains(body, "<html") || doc.Find(`[data-testid="result-row"]`).Length() == 0 {
		t.Errorf("fragment is a full page or has no rows")
	}
	if !strings.Contains(r.Header.Get("Vary"), "HX-Request") {
		t.Errorf("Vary = %q", r.Header.Get("Vary"))
	}
	// An unknown launch in a fragment gets an error fragment, not a page.
	r, _, body = b.get(h.AppURL + "/l/AAAAAAAAAAAAAAAAAAAAAA/labs")
	if r.StatusCode != http.StatusNotFound || strings.Contains(body, "<html") || !strings.Contains(body, `data-testid="error-title"`) {
		t.Errorf("unknown launch fragment: %d %q", r.StatusCode, body[:min(len(body), 200)])
	}
}

// TestUpstreamFaults: what the EHR does wrong is told plainly, never as a bare 5xx page of ours.
func TestUpstreamFaults(t *testing.T) {
	t.Run("failed page keeps what arrived", func(t *testing.T) {
		for _, tt := range []struct {
			name     string
			parallel int
		}{{"page after page", 1}, {"sliced", 4}} {
			t.Run(tt.name, func(t *testing.T) {
				h := newHarness(t, harnessOptions{Switches: ehrsim.Switches{FailPage: 2},
					Mutate: func(c *config.Config) { c.Issuers[0].MaxParallel = tt.parallel }})
				b := newBrowser(t)
				p := h.Patient("Lin")
				_, doc := mustLaunch(t, h, b, p)
				if doc.Find(`[data-testid="incomplete"]`).Length() != 1 {
					t.Error("no incomplete banner")
				}
				// Page after page, only page 1 arrives; sliced, page 1 of the
				// search and of each window, until the first page 2 fails.
				rows, most := doc.Find(`[data-testid="result-row"]`).Length(), h.Cfg.FHIR.PageSize
				if tt.parallel > 1 {
					most = p.ResultCount - p.EnteredInError - 1
				}
				if rows == 0 || rows > most {
					t.Errorf("rows = %d, want what arrived (1..%d)", rows, most)
				}
				if !strings.Contains(h.Audit.String(), `"outcome":"incomplete"`) {
					t.Error("audit does not say incomplete")
				}
			})
		}
	})
	t.Run("wrong subject withholds everything", func(t *testing.T) {
		h := newHarness(t, harnessOptions{Switches: ehrsim.Switches{WrongSubject: true}})
		b := newBrowser(t)
		resp, doc, _ := b.get(h.LaunchURL(h.Patient("Lin").ID))
		// The page began before the first page of results arrived, so its
		// status was sent already: the error stands in the view's place.
		assertPage(t, resp, doc, http.StatusOK, "withheld")
		if doc.Find(`[data-testid="labs-view"] > [data-testid="error"]`).Length() != 1 {
			t.Error("the error is not in the view's place")
		}
		if doc.Find(`[data-testid="result-row"], [data-testid="summary-line"]`).Length() != 0 {
			t.Error("rows shown despite a wrong-patient result")
		}
		if !strings.Contains(h.Logs.String(), `"status":502,"reason":"fhir.wrong_patient","in_band":true`) {
			t.Error("the withheld view is not logged as a failed request")
		}
	})
	t.Run("paging session expired restarts", func(t *testing.T) {
		h := newHarness(t, harnessOptions{Switches: ehrsim.Switches{PagingExpired: true}})
		p := h.Patient("Lin")
		b := newBrowser(t)
		_, doc := mustLaunch(t, h, b, p)
		if got, want := doc.Find(`[data-testid="result-row"]`).Length(), p.ResultCount-p.EnteredInError; got != want {
			t.Errorf("rows = %d, want %d", got, want)
		}
	})
	t.Run("EHR unreachable", func(t *testing.T) {
		h := newHarness(t, harnessOptions{Mutate: func(c *config.Config) {
			c.Issuers = append(c.Issuers, config.Issuer{Name: "down", ISS: "http://127.0.0.1:1/fhir", ClientID: "x", ClientSecret: "y"})
		}})
		b := newBrowser(t)
		resp, doc, _ := b.get(h.AppURL + "/launch?iss=" + url.QueryEscape("http://127.0.0.1:1/fhir") + "&launch=abc")
		assertPage(t, resp, doc, http.StatusBadGateway, "could not be reached")
	})
	t.Run("patient with no labs", func(t *testing.T) {
		h := newHarness(t, harnessOptions{})
		b := newBrowser(t)
		_, doc := mustLaunch(t, h, b, h.Patient("Empty"))
		if doc.Find(`[data-testid="result-row"]`).Length() != 0 || doc.Find(`[data-testid="incomplete"]`).Length() != 0 {
			t.Error("empty patient shows rows or an incomplete banner")
		}
	})
}
