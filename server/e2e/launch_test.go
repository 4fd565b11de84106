package e2e_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"smartlabs/server/e2e"
	"smartlabs/server/servertest"
)

const frame = `[data-testid="app-frame"]`

// screenshotDir is where README screenshots are written when set
// (make screenshots sets it to components/testdata/screenshots).
var screenshotDir = os.Getenv("SMARTLABS_SCREENSHOTS")

func shot(t *testing.T, tab *e2e.Tab, name string) {
	t.Helper()
	if screenshotDir == "" {
		return
	}
	if err := tab.Screenshot(filepath.Join(screenshotDir, name)); err != nil {
		t.Fatal(err)
	}
}

// uiWait bounds every wait for the UI. It only ends a failing test: a swap
// of hundreds of rows takes seconds under -race on a loaded 2-core machine.
const uiWait = 60 * time.Second

// openChart clicks Launch for the patient on the simulator's launchpad and
// waits until the app inside the cross-site frame shows its labs.
func openChart(t *testing.T, env *servertest.Env, tab *e2e.Tab, patientName string) {
	t.Helper()
	p := env.Patient(patientName)
	if err := tab.Navigate(env.SimURL + "/"); err != nil {
		t.Fatal(err)
	}
	if err := tab.Click("", `[data-testid="launch-`+p.ID+`"]`); err != nil {
		t.Fatal(err)
	}
	if err := tab.WaitText(frame, `[data-testid="banner-name"]`, p.Name, uiWait); err != nil {
		html, _ := tab.HTML(frame)
		t.Fatalf("labs for %s never appeared in the frame: %v\n%s", p.Name, err, truncate(html, 2000))
	}
	waitLoaded(t, tab)
}

// waitLoaded waits until the frame's document has finished loading: a long
// list is still streaming in when its first rows are already visible.
func waitLoaded(t *testing.T, tab *e2e.Tab) {
	t.Helper()
	for deadline := time.Now().Add(uiWait); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		var state string
		if err := tab.Eval(frame, `document.readyState`, &state); err == nil && state == "complete" {
			return
		}
	}
	t.Fatal("frame never finished loading")
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// TestEHRLaunchInCrossSiteFrame is the whole product in one test: the
// launchpad, the chart page framing the app cross-site, the SMART launch, and
// every lab from every page shown, with no token anywhere in the browser.
func TestEHRLaunchInCrossSiteFrame(t *testing.T) {
	env := servertest.New(t, servertest.Options{})
	b := e2e.NewBrowser(t)
	tab := b.NewTab(t)
	p := env.Patient("Lin")
	openChart(t, env, tab, "Lin")

	frameURL, err := tab.FrameURL(frame)
	if err != nil || !strings.HasPrefix(frameURL, env.AppURL+"/l/") {
		t.Fatalf("frame URL = %q, %v", frameURL, err)
	}
	// The summary is the default view; "All results" counts every result of
	// every page of the search, and shows them 200 a page.
	if err := tab.Click(frame, `[data-testid="tab-all"]`); err != nil {
		t.Fatal(err)
	}
	if err := tab.WaitText(frame, `[data-testid="tab-all"][aria-current="page"]`, "All results", uiWait); err != nil {
		t.Fatal(err)
	}
	rows, err := tab.Count(frame, `[data-testid="result-row"]`)
	if err != nil {
		t.Fatal(err)
	}
	if want := min(p.ResultCount-p.EnteredInError, 200); rows != want {
		t.Errorf("rows in frame = %d, want %d", rows, want)
	}
	if got, _ := tab.Text(frame, `[data-testid="list-range"]`); !strings.Contains(got, "of "+thousands(p.ResultCount-p.EnteredInError)) {
		t.Errorf("the pager reads %q", got)
	}
	count, _ := tab.Text(frame, `[data-testid="result-count"]`)
	if !strings.Contains(count, thousands(p.ResultCount-p.EnteredInError)) {
		t.Errorf("result count reads %q", count)
	}
	shot(t, tab, "labs.png")

	// The session cookie is partitioned under the EHR's site, opaque and HttpOnly.
	cookies, err := tab.Cookies()
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, c := range cookies {
		if c.Name != "__Host-smartlabs" {
			continue
		}
		found = true
		if !c.HTTPOnly || !c.Secure || c.PartitionKey == nil || c.SameSite != "None" {
			t.Errorf("session cookie = %+v", c)
		}
	}
	if !found {
		t.Fatal("no session cookie stored")
	}

	// No token anywhere the browser can see: responses, headers, URLs, cookies, storage.
	var seen []string
	for _, r := range tab.Responses() {
		seen = append(seen, r.URL, r.Body)
		for _, h := range []map[string][]string{r.Headers, r.RawHeaders} {
			for k, v := range h {
				seen = append(seen, k+": "+strings.Join(v, ", "))
			}
		}
	}
	seen = append(seen, tab.RequestURLs()...)
	for _, c := range cookies {
		seen = append(seen, c.Name+"="+c.Value)
	}
	storage, _ := tab.Storage(frame)
	for k, v := range storage {
		seen = append(seen, k+"="+v)
	}
	all := strings.Join(seen, "\n")
	for _, s := range env.Secrets() {
		if strings.Contains(all, servertest.Probe(s)) {
			t.Errorf("a token reached the browser")
		}
	}
}

// TestTwoTabsKeepTheirPatient: launch A in one tab, B in another, reload A's
// frame: A still shows A.
func TestTwoTabsKeepTheirPatient(t *testing.T) {
	env := servertest.New(t, servertest.Options{})
	b := e2e.NewBrowser(t)
	tabA, tabB := b.NewTab(t), b.NewTab(t)
	openChart(t, env, tabA, "Lin")
	openChart(t, env, tabB, "Okafor")

	mustLoadNew(t, tabA, `location.reload()`)
	pa, pb := env.Patient("Lin"), env.Patient("Okafor")
	if err := tabA.WaitText(frame, `[data-testid="banner-name"]`, pa.Name, uiWait); err != nil {
		got, _ := tabA.Text(frame, `[data-testid="banner-name"]`)
		t.Fatalf("tab A after reload shows %q: %v", got, err)
	}
	if got, _ := tabB.Text(frame, `[data-testid="banner-name"]`); got != pb.Name {
		t.Fatalf("tab B shows %q, want %q", got, pb.Name)
	}
	mustLoadNew(t, tabB, `location.reload()`)
	if err := tabB.WaitText(frame, `[data-testid="banner-name"]`, pb.Name, uiWait); err != nil {
		t.Fatalf("tab B after reload: %v", err)
	}
}

// TestRefreshSwapsList: the Refresh button re-fetches through HTMX inside the frame.
func TestRefreshSwapsList(t *testing.T) {
	env := servertest.New(t, servertest.Options{})
	b := e2e.NewBrowser(t)
	tab := b.NewTab(t)
	openChart(t, env, tab, "Okafor")
	before := env.CountSimRequests("/fhir/R4/Observation")
	if err := tab.Click(frame, `[data-testid="refresh"]`); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(uiWait)
	for env.CountSimRequests("/fhir/R4/Observation") == before && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if env.CountSimRequests("/fhir/R4/Observation") == before {
		t.Fatal("Refresh did not re-fetch")
	}
	// Wait for htmx to finish the request and the swap.
	for deadline := time.Now().Add(uiWait); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		var busy bool
		if err := tab.Eval(frame, `document.querySelector(".htmx-request, .htmx-swapping, .htmx-settling") !== null`, &busy); err == nil && !busy {
			break
		}
	}
	p := env.Patient("Okafor")
	if err := tab.WaitText(frame, `[data-testid="result-count"]`, strconv.Itoa(p.ResultCount-p.EnteredInError), uiWait); err != nil {
		t.Fatal(err)
	}
	var lists, banners int
	tab.Eval(frame, `document.querySelectorAll("#labs").length`, &lists)
	tab.Eval(frame, `document.querySelectorAll("[data-testid=banner-name]").length`, &banners)
	if lists != 1 || banners != 1 {
		t.Errorf("after Refresh: %d lists and %d banners, want 1 each", lists, banners)
	}
}

// TestStandaloneLaunchTopLevel: the standalone link on the launchpad, as a top-level window.
func TestStandaloneLaunchTopLevel(t *testing.T) {
	env := servertest.New(t, servertest.Options{})
	b := e2e.NewBrowser(t)
	tab := b.NewTab(t)
	if err := tab.Navigate(env.SimURL + "/"); err != nil {
		t.Fatal(err)
	}
	if err := tab.Click("", `[data-testid="standalone-launch"]`); err != nil {
		t.Fatal(err)
	}
	if err := tab.WaitText("", `[data-testid="result-count"]`, "result", uiWait); err != nil {
		html, _ := tab.HTML("")
		t.Fatalf("standalone labs never appeared: %v\n%s", err, truncate(html, 1500))
	}
}

// thousands writes n as the view does: 4969 -> "4,969".
func thousands(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
