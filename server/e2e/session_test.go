package e2e_test

import (
	"strings"
	"sync"
	"testing"
	"time"

	"smartlabs/server/e2e"
	"smartlabs/server/ehrsim"
	"smartlabs/server/servertest"
)

// fakeClock is an adjustable clock shared by the app and the simulator.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// mustFrameURL returns the frame's URL once it equals want, failing after a while.
func mustFrameURL(t *testing.T, tab *e2e.Tab, want string) {
	t.Helper()
	var got string
	for deadline := time.Now().Add(uiWait); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if u, err := tab.FrameURL(frame); err == nil {
			got = u
			if u == want {
				return
			}
		}
	}
	t.Fatalf("frame URL = %q, want %q", got, want)
}

// mustNoPatientData fails when the frame shows anything of a patient.
func mustNoPatientData(t *testing.T, tab *e2e.Tab, p ehrsim.PatientInfo) {
	t.Helper()
	for _, sel := range []string{`[data-testid="labs"]`, `[data-testid="patient-banner"]`, `[data-testid="result-row"]`, `[data-testid="summary"]`} {
		if n, err := tab.Count(frame, sel); err != nil || n != 0 {
			t.Errorf("frame has %d %s (%v), want none", n, sel, err)
		}
	}
	html, err := tab.HTML(frame)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(html, p.Name) {
		t.Error("frame still shows the patient's name")
	}
}

// countRequests counts the requests the tab sent for exactly u.
func countRequests(tab *e2e.Tab, u string) int {
	n := 0
	for _, r := range tab.RequestURLs() {
		if r == u {
			n++
		}
	}
	return n
}

// TestSignOutInFrame: the Sign out button inside the cross-site EHR frame
// leads to the signed-out page, the session cookie is dropped, and the old
// labs URL loaded again in the frame shows the "not open in this browser"
// page with no patient data.
func TestSignOutInFrame(t *testing.T) {
	env := servertest.New(t, servertest.Options{})
	b := e2e.NewBrowser(t)
	tab := b.NewTab(t)
	p := env.Patient("Lin")
	openChart(t, env, tab, "Lin")
	waitIdle(t, tab)
	labsURL, err := tab.FrameURL(frame)
	if err != nil || !strings.HasPrefix(labsURL, env.AppURL+"/l/") {
		t.Fatalf("frame URL = %q, %v", labsURL, err)
	}

	if err := tab.Click(frame, `[data-testid="logout"]`); err != nil {
		t.Fatal(err)
	}
	mustFrameURL(t, tab, env.AppURL+"/signed-out")
	if err := tab.WaitText(frame, `[data-testid="error-title"]`, "You are signed out of smartlabs", uiWait); err != nil {
		t.Fatal(err)
	}
	mustNoPatientData(t, tab, p)
	cookies, err := tab.Cookies()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cookies {
		if c.Name == "__Host-smartlabs" && c.Value != "" {
			t.Error("the session cookie is still stored after signing out")
		}
	}

	// The old labs URL, loaded again in the same frame, shows nothing of the patient.
	if err := tab.Eval(frame, "location.replace("+jsQuote(labsURL)+")", nil); err != nil {
		t.Fatal(err)
	}
	mustFrameURL(t, tab, labsURL)
	if err := tab.WaitText(frame, `[data-testid="error-title"]`, "This view is not open in this browser", uiWait); err != nil {
		t.Fatal(err)
	}
	waitLoaded(t, tab)
	mustNoPatientData(t, tab, p)
}

// TestSessionEndedInFrame: when the access token has expired and the EHR
// refuses the refresh, an HTMX request in the frame (the Refresh button)
// makes the whole frame show the "session has ended" page through
// HX-Redirect: no fragment swapped into the list, no redirect loop, and no
// redirect to the authorization server.
func TestSessionEndedInFrame(t *testing.T) {
	clk := &fakeClock{t: servertest.Epoch}
	env := servertest.New(t, servertest.Options{
		Now:      clk.now,
		Switches: ehrsim.Switches{TokenLifetime: 2 * time.Minute, RevokeRefresh: true},
	})
	b := e2e.NewBrowser(t)
	tab := b.NewTab(t)
	p := env.Patient("Okafor")
	openChart(t, env, tab, "Okafor")
	waitIdle(t, tab)
	labsURL, err := tab.FrameURL(frame)
	if err != nil || !strings.HasPrefix(labsURL, env.AppURL+"/l/") {
		t.Fatalf("frame URL = %q, %v", labsURL, err)
	}
	// The labs URL without its query is where HX-Redirect leads.
	pagePath := labsURL
	if i := strings.IndexByte(pagePath, '?'); i >= 0 {
		pagePath = pagePath[:i]
	}
	tokenRequests := env.CountSimRequests("/oauth2/token")
	authorizeRequests := env.CountSimRequests("/oauth2/authorize")
	navsBefore := countRequests(tab, pagePath)

	// The access token expires and the refresh token is refused.
	clk.add(5 * time.Minute)
	if err := tab.Click(frame, `[data-testid="refresh"]`); err != nil {
		t.Fatal(err)
	}
	if err := tab.WaitText(frame, `[data-testid="error-title"]`, "Your smartlabs session has ended", uiWait); err != nil {
		html, _ := tab.HTML(frame)
		t.Fatalf("%v\n%s", err, truncate(html, 2000))
	}
	waitLoaded(t, tab)
	// A full page, not a fragment inside the old list.
	mustFrameURL(t, tab, pagePath)
	if n, _ := tab.Count(frame, `[data-testid="error-title"]`); n != 1 {
		t.Errorf("%d error titles in the frame, want 1", n)
	}
	msg, _ := tab.Text(frame, `[data-testid="error-message"]`)
	if !strings.Contains(msg, "Reopen smartlabs from the patient's chart") {
		t.Errorf("error message = %q", msg)
	}
	mustNoPatientData(t, tab, p)

	// No loop: one navigation to the page, and it stays there.
	time.Sleep(500 * time.Millisecond)
	if n := countRequests(tab, pagePath) - navsBefore; n != 1 {
		t.Errorf("%d navigations to the labs page after the refresh, want 1", n)
	}
	if u, _ := tab.FrameURL(frame); u != pagePath {
		t.Errorf("frame moved on to %q", u)
	}
	// One refused refresh and never a new sign-in at the authorization server.
	if n := env.CountSimRequests("/oauth2/token") - tokenRequests; n != 1 {
		t.Errorf("token requests after expiry = %d, want 1 (the refused refresh)", n)
	}
	if n := env.CountSimRequests("/oauth2/authorize") - authorizeRequests; n != 0 {
		t.Errorf("authorize requests after expiry = %d, want 0", n)
	}
}
