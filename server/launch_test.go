package server_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"

	"smartlabs/server/ehrsim"
)

var labsPathRe = regexp.MustCompile(`^/l/[A-Za-z0-9_-]{22}$`)

// mustLaunch runs a full EHR launch for the patient, waits until every page
// of results has arrived (following the page's progress polls), and returns
// the launch's response and its "All results" page, which lists every result.
func mustLaunch(t testing.TB, h *harness, b *browser, p ehrsim.PatientInfo) (*http.Response, *goquery.Document) {
	t.Helper()
	resp, doc, _ := b.get(h.LaunchURL(p.ID))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("launch ended with %d at %s: %s", resp.StatusCode, resp.Request.URL, text(doc, "error-message"))
	}
	if !labsPathRe.MatchString(resp.Request.URL.Path) {
		t.Fatalf("launch ended at %s, want /l/{launch id}", resp.Request.URL.Path)
	}
	mustFollowPolls(t, b, h.AppURL, doc)
	_, doc, _ = b.getList(resp.Request.URL.String() + "?view=all")
	return resp, doc
}

// TestEHRLaunchShowsEveryLab launches from the simulator and checks every
// result of every page is shown for the right patient, with both client
// authentication methods.
func TestEHRLaunchShowsEveryLab(t *testing.T) {
	for _, tc := range []struct {
		name string
		jwt  bool
	}{{"client_secret_basic", false}, {"private_key_jwt", true}} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, harnessOptions{JWT: tc.jwt})
			p := h.Patient("Lin")
			b := newBrowser(t)
			_, doc := mustLaunch(t, h, b, p)

			if got := text(doc, "banner-name"); got != p.Name {
				t.Errorf("banner name = %q, want %q", got, p.Name)
			}
			rows := doc.Find(`[data-testid="result-row"]`).Length()
			if want := p.ResultCount - p.EnteredInError; rows != want {
				t.Errorf("rows = %d, want %d (every page, entered-in-error left out)", rows, want)
			}
			if pages := h.CountSimRequests("/fhir/R4/Observation"); pages < 2 {
				t.Errorf("observation requests = %d, want several pages", pages)
			}
			for _, r := range h.Sim.Requests() {
				if strings.HasPrefix(r.Path, "/fhir/R4/") && r.EpicClientID != clientID {
					t.Errorf("%s sent Epic-Client-ID %q", r.Path, r.EpicClientID)
				}
			}
			// One audit event for the view, naming who saw which patient.
			var ev map[string]any
			lines := strings.Split(strings.TrimSpace(h.Audit.String()), "\n")
			if len(lines) != 1 {
				t.Fatalf("audit lines = %d, want 1: %s", len(lines), h.Audit.String())
			}
			if err := json.Unmarshal([]byte(lines[0]), &ev); err != nil {
				t.Fatal(err)
			}
			if ev["patient"] != p.ID || ev["issuer"] != h.Sim.ISS() || ev["outcome"] != "complete" || !strings.Contains(ev["who"].(string), "Practitioner/") {
				t.Errorf("audit event = %v", ev)
			}
		})
	}
}

func TestStandaloneLaunch(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	b := newBrowser(t)
	resp, doc, _ := b.get(h.AppURL + "/launch?iss=" + url.QueryEscape(h.Sim.ISS()))
	if resp.StatusCode != http.StatusOK || !labsPathRe.MatchString(resp.Request.URL.Path) {
		t.Fatalf("standalone launch: %d at %s: %s", resp.StatusCode, resp.Request.URL, text(doc, "error-message"))
	}
	if doc.Find(`[data-testid="summary-line"]`).Length() == 0 {
		t.Error("standalone launch shows no results")
	}
	recs := h.LaunchRecords()
	if len(recs) != 1 || recs[0]["ehr_launch"] != false {
		t.Errorf("launch records = %v", recs)
	}
}

// TestTwoLaunchesNeverMix: launch A, launch B, reload A: A still shows A.
func TestTwoLaunchesNeverMix(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	b := newBrowser(t)
	pa, pb := h.Patient("Lin"), h.Patient("Okafor")
	respA, _ := mustLaunch(t, h, b, pa)
	respB, docB := mustLaunch(t, h, b, pb)
	if got := text(docB, "banner-name"); got != pb.Name {
		t.Fatalf("B shows %q", got)
	}
	_, docA, _ := b.get(respA.Request.URL.String())
	if got := text(docA, "banner-name"); got != pa.Name {
		t.Fatalf("reloading A shows %q, want %q", got, pa.Name)
	}
	_, docB2, _ := b.get(respB.Request.URL.String())
	if got := text(docB2, "banner-name"); got != pb.Name {
		t.Fatalf("reloading B shows %q, want %q", got, pb.Name)
	}
	// A launch id alone is worthless in another browser.
	other := newBrowser(t)
	resp, _, _ := other.get(respA.Request.URL.String())
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("A's URL in another browser: status %d, want 404", resp.StatusCode)
	}
}

// TestLaunchErrors covers bad input at /launch: each gets a plain 4xx page, and
// nothing reaches the EHR for an iss that is not configured.
func TestLaunchErrors(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	iss := url.QueryEscape(h.Sim.ISS())
	tests := []struct {
		name       string
		query      string
		wantStatus int
		wantTitle  string
	}{
		{"unknown iss", "iss=" + url.QueryEscape("https://evil.example/fhir/R4") + "&launch=x", 400, "not set up for this EHR"},
		{"iss on another port", "iss=" + url.QueryEscape(strings.Replace(h.Sim.ISS(), "127.0.0.1:", "127.0.0.1:1", 1)) + "&launch=x", 400, "not set up for this EHR"},
		{"iss with other path case", "iss=" + url.QueryEscape(strings.Replace(h.Sim.ISS(), "R4", "r4", 1)), 400, "not set up for this EHR"},
		{"missing iss", "launch=x", 400, "does not say which EHR"},
		{"two iss", "iss=" + iss + "&iss=" + iss, 400, "malformed"},
		{"huge launch", "iss=" + iss + "&launch=" + strings.Repeat("a", 9000), 400, "too long"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h.Sim.ResetRequests()
			b := newBrowser(t)
			resp, doc, _ := b.get(h.AppURL + "/launch?" + tt.query)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status = %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			if got := text(doc, "error-title"); !strings.Contains(got, tt.wantTitle) {
				t.Errorf("title = %q, want it to contain %q", got, tt.wantTitle)
			}
			if n := len(h.Sim.Requests()); n != 0 {
				t.Errorf("simulator received %d requests, want 0", n)
			}
		})
	}
}

func TestHeadLaunchStartsNothing(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	u := h.LaunchURL(h.Patient("Lin").ID)
	resp, err := http.Head(u)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Errorf("HEAD status = %d", resp.StatusCode)
	}
	if resp.Header.Get("Set-Cookie") != "" {
		t.Error("HEAD set a cookie")
	}
	if n := len(h.Sim.Requests()); n != 0 {
		t.Errorf("HEAD caused %d simulator requests", n)
	}
	// The launch token is still unused.
	b := newBrowser(t)
	if r, _, _ := b.get(u); r.StatusCode != http.StatusOK {
		t.Errorf("launch after HEAD: %d", r.StatusCode)
	}
}

// TestRelaunchWithTheSameLaunchValue: a launcher that sends the same launch
// value every time for the same settings (smart-launcher-v2) launches again
// and again, in the same browser and in another one: whether a launch value
// may be reused is the authorization server's decision, not ours.
func TestRelaunchWithTheSameLaunchValue(t *testing.T) {
	h := newHarness(t, harnessOptions{Switches: ehrsim.Switches{ReusableLaunch: true}})
	p := h.Patient("Lin")
	u := h.LaunchURL(p.ID)
	b := newBrowser(t)
	for i, br := range []*browser{b, b, newBrowser(t)} {
		resp, doc, _ := br.get(u)
		if resp.StatusCode != http.StatusOK || resp.Request.URL.Path == "/callback" || !strings.HasPrefix(resp.Request.URL.Path, "/l/") {
			t.Fatalf("launch %d with the same launch value: %d at %s (%q)", i+1, resp.StatusCode, resp.Request.URL.Path, text(doc, "error-title"))
		}
	}
	if n := h.CountSimRequests("/oauth2/authorize"); n != 3 {
		t.Errorf("%d authorize requests, want 3 (one per launch)", n)
	}
}

// TestSingleUseLaunchRefusedByTheEHR: an EHR whose launch values are single
// use (Epic) refuses a reload at its authorization server, and the clinician
// gets the plain "reopen from the chart" page; the refusal is logged with a
// reason code.
func TestSingleUseLaunchRefusedByTheEHR(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	u := h.LaunchURL(h.Patient("Lin").ID)
	b := newBrowser(t)
	if r, _, _ := b.get(u); r.StatusCode != http.StatusOK {
		t.Fatalf("first launch: %d", r.StatusCode)
	}
	resp, doc, _ := b.get(u)
	assertPage(t, resp, doc, 400, "refused the sign-in")
	if msg := text(doc, "error-message"); !strings.Contains(msg, "Reopen smartlabs from the patient's chart") {
		t.Errorf("message %q does not say to reopen from the chart", msg)
	}
	if !strings.Contains(h.Logs.String(), `"reason":"callback.error.invalid_request"`) {
		t.Errorf("no log line with reason callback.error.invalid_request:\n%s", h.Logs.String())
	}
}

// TestCookieBlocked: a browser that drops our cookie is told so, with a way out,
// before the launch token is spent.
func TestCookieBlocked(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	u := h.LaunchURL(h.Patient("Lin").ID)
	b := newCookielessBrowser(t)
	resp, doc, _ := b.get(u)
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("status = %d", resp.StatusCode)
	}
	if !strings.Contains(text(doc, "error-title"), "blocked") {
		t.Errorf("title = %q", text(doc, "error-title"))
	}
	a := doc.Find(`[data-testid="error-action"]`)
	href, _ := a.Attr("href")
	if target, _ := a.Attr("target"); target != "_blank" || !strings.HasPrefix(href, "/launch?") || strings.Contains(href, "cc=") {
		t.Errorf("action = %q target %q", href, target)
	}
	if n := h.CountSimRequests("/oauth2/authorize"); n != 0 {
		t.Errorf("launch token spent: %d authorize requests", n)
	}
	// Following the offered link in a normal (top-level) window works.
	nb := newBrowser(t)
	if r, _, _ := nb.get(h.AppURL + href); r.StatusCode != http.StatusOK {
		t.Errorf("new window launch: %d", r.StatusCode)
	}
}

// callbackURL runs a launch up to the redirect back to /callback and returns it.
func callbackURL(t testing.TB, h *harness, b *browser, p ehrsim.PatientInfo) *url.URL {
	t.Helper()
	nr := b.noRedirect()
	u := h.LaunchURL(p.ID)
	for i := 0; i < 6; i++ {
		resp, _, _ := nr.get(u)
		loc, err := resp.Location()
		if err != nil {
			t.Fatalf("no redirect from %s (%d)", u, resp.StatusCode)
		}
		if loc.Path == "/callback" {
			return loc
		}
		u = loc.String()
	}
	t.Fatal("never reached /callback")
	return nil
}

func TestCallbackErrors(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	p := h.Patient("Lin")

	t.Run("missing state", func(t *testing.T) {
		b := newBrowser(t)
		cb := callbackURL(t, h, b, p)
		q := cb.Query()
		q.Del("state")
		resp, doc, _ := b.get(h.AppURL + "/callback?" + q.Encode())
		assertPage(t, resp, doc, 400, "incomplete")
	})
	t.Run("wrong state", func(t *testing.T) {
		b := newBrowser(t)
		cb := callbackURL(t, h, b, p)
		q := cb.Query()
		q.Set("state", q.Get("state")+"x")
		resp, doc, _ := b.get(h.AppURL + "/callback?" + q.Encode())
		assertPage(t, resp, doc, 400, "expired or was already used")
	})
	t.Run("replayed state", func(t *testing.T) {
		b := newBrowser(t)
		cb := callbackURL(t, h, b, p)
		if r, _, _ := b.get(h.AppURL + "/callback?" + cb.RawQuery); r.StatusCode != 200 {
			t.Fatalf("first callback: %d", r.StatusCode)
		}
		tokenRequests := h.CountSimRequests("/oauth2/token")
		resp, doc, _ := b.get(h.AppURL + "/callback?" + cb.RawQuery)
		assertPage(t, resp, doc, 400, "expired or was already used")
		if h.CountSimRequests("/oauth2/token") != tokenRequests {
			t.Error("replayed state reached the token endpoint")
		}
	})
	t.Run("replayed code", func(t *testing.T) {
		b := newBrowser(t)
		first := callbackURL(t, h, b, p)
		if r, _, _ := b.get(h.AppURL + "/callback?" + first.RawQuery); r.StatusCode != 200 {
			t.Fatalf("first callback: %d", r.StatusCode)
		}
		second := callbackURL(t, h, b, p)
		q := second.Query()
		q.Set("code", first.Query().Get("code"))
		resp, doc, _ := b.get(h.AppURL + "/callback?" + q.Encode())
		assertPage(t, resp, doc, 400, "could not be completed")
	})
	t.Run("state from another browser", func(t *testing.T) {
		b := newBrowser(t)
		cb := callbackURL(t, h, b, p)
		other := newBrowser(t)
		mustLaunch(t, h, other, p) // the other browser has a session of its own
		resp, doc, _ := other.get(h.AppURL + "/callback?" + cb.RawQuery)
		assertPage(t, resp, doc, 400, "another browser")
	})
	t.Run("cookie never came back", func(t *testing.T) {
		b := newBrowser(t)
		cb := callbackURL(t, h, b, p)
		resp, doc, _ := newCookielessBrowser(t).get(h.AppURL + "/callback?" + cb.RawQuery)
		assertPage(t, resp, doc, 400, "did not return smartlabs' cookie")
		if doc.Find(`[data-testid="error-action"][target="_blank"]`).Length() != 1 {
			t.Error("no new-window action offered")
		}
	})
	t.Run("access denied", func(t *testing.T) {
		h.Sim.SetSwitches(ehrsim.Switches{DenyAuthorization: true})
		defer h.Sim.SetSwitches(ehrsim.Switches{})
		b := newBrowser(t)
		resp, doc, _ := b.get(h.LaunchURL(p.ID))
		assertPage(t, resp, doc, 403, "Access was not granted")
	})
	t.Run("unknown launch token", func(t *testing.T) {
		// The EHR refuses a launch token it never issued; the answer comes back as an error page.
		b := newBrowser(t)
		resp, doc, _ := b.get(h.AppURL + "/launch?iss=" + url.QueryEscape(h.Sim.ISS()) + "&launch=nope")
		assertPage(t, resp, doc, 400, "refused the sign-in")
	})
	t.Run("no patient in token", func(t *testing.T) {
		h.Sim.SetSwitches(ehrsim.Switches{NoPatientInToken: true})
		defer h.Sim.SetSwitches(ehrsim.Switches{})
		b := newBrowser(t)
		before := len(h.LaunchRecords())
		resp, doc, _ := b.get(h.LaunchURL(p.ID))
		assertPage(t, resp, doc, 502, "No patient")
		if after := len(h.LaunchRecords()); after != before {
			t.Errorf("a launch without a patient was saved (%d records, were %d)", after, before)
		}
	})
}

// TestResponseIssuer: with RFC 9207 on, a matching iss passes and a forged one
// is refused before any token request.
func TestResponseIssuer(t *testing.T) {
	h := newHarness(t, harnessOptions{Switches: ehrsim.Switches{ResponseISS: true}})
	p := h.Patient("Lin")
	b := newBrowser(t)
	mustLaunch(t, h, b, p)

	cb := callbackURL(t, h, b, p)
	q := cb.Query()
	if q.Get("iss") == "" {
		t.Fatal("simulator sent no iss")
	}
	q.Set("iss", "https://evil.example/oauth2")
	before := h.CountSimRequests("/oauth2/token")
	resp, doc, _ := b.get(h.AppURL + "/callback?" + q.Encode())
	assertPage(t, resp, doc, 400, "wrong server")
	if h.CountSimRequests("/oauth2/token") != before {
		t.Error("mix-up: the code was sent to the token endpoint")
	}
	q.Del("iss")
	cb2 := callbackURL(t, h, b, p)
	q2 := cb2.Query()
	q2.Del("iss")
	resp, doc, _ = b.get(h.AppURL + "/callback?" + q2.Encode())
	assertPage(t, resp, doc, 400, "wrong server")
}

func assertPage(t *testing.T, resp *http.Response, doc *goquery.Document, status int, title string) {
	t.Helper()
	if resp.StatusCode != status {
		t.Errorf("status = %d, want %d (%s)", resp.StatusCode, status, text(doc, "error-title"))
	}
	if got := text(doc, "error-title"); !strings.Contains(got, title) {
		t.Errorf("title = %q, want it to contain %q", got, title)
	}
	if doc.Find(`[data-testid="error-ref"]`).Length() != 1 {
		t.Error("error page has no request reference")
	}
}
