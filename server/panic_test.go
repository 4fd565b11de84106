package server_test

import (
	"bufio"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/PuerkitoBio/goquery"

	"smartlabs/server"
	"smartlabs/server/metrics"
)

// panicky is a transport that panics on the requests its trap picks, as a
// bug in response handling would, and passes the others on.
type panicky struct {
	mu   sync.Mutex
	trap func(*http.Request) bool
	hits int
}

func (p *panicky) set(trap func(*http.Request) bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.trap = trap
}

func (p *panicky) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.hits
}

func (p *panicky) RoundTrip(r *http.Request) (*http.Response, error) {
	p.mu.Lock()
	hit := p.trap != nil && p.trap(r)
	if hit {
		p.hits++
	}
	p.mu.Unlock()
	if hit {
		// The value carries the request's URL, patient id and all: it must not reach the log.
		panic("injected panic at " + r.URL.String())
	}
	return http.DefaultTransport.RoundTrip(r)
}

// newPanickyHarness wires the app with metrics and a panicky transport.
func newPanickyHarness(t *testing.T) (*harness, *panicky, *metrics.Metrics) {
	t.Helper()
	pt := &panicky{}
	m := metrics.New(metrics.Options{})
	h := newHarness(t, harnessOptions{Deps: func(d *server.Deps) {
		d.HTTPClient.Transport = pt
		d.Metrics = m
	}})
	return h, pt, m
}

// panicLog is the log line of one recovered panic.
type panicLog struct {
	Level     string `json:"level"`
	Message   string `json:"message"`
	RequestID string `json:"request_id"`
	Route     string `json:"route"`
	Where     string `json:"where"`
	Panic     string `json:"panic"`
	Stack     string `json:"stack"`
}

func panicLogs(t *testing.T, h *harness) []panicLog {
	t.Helper()
	var out []panicLog
	sc := bufio.NewScanner(strings.NewReader(h.Logs.String()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var l panicLog
		if json.Unmarshal(sc.Bytes(), &l) == nil && l.Message == "panic recovered" {
			out = append(out, l)
		}
	}
	return out
}

// mustPlain500 checks that a response is the plain 500 page with a ref and
// no trace of the panic, and returns its request id.
func mustPlain500(t *testing.T, resp *http.Response, body string) string {
	t.Helper()
	if resp.StatusCode != http.StatusInternalServerError {
		t.Fatalf("status %d, want 500", resp.StatusCode)
	}
	rid := resp.Header.Get("X-Request-Id")
	if rid == "" || !strings.Contains(body, "ref "+rid) {
		t.Errorf("the 500 page does not show its ref %q", rid)
	}
	for _, leak := range []string{"goroutine", "injected", ".go:", "panic"} {
		if strings.Contains(body, leak) {
			t.Errorf("the 500 page shows %q", leak)
		}
	}
	return rid
}

// TestFetchPanicKeepsServing: a panic in the background fetch of a launch's
// results (here in its Observation search, or in its Patient read) ends that
// fetch with the plain 500 page at once. It is logged with the id and route
// of the request that started the fetch, without the panic's data, and
// counted. Polls and filters show the error without fetching again; Refresh
// fetches again. Other launches are served as before.
func TestFetchPanicKeepsServing(t *testing.T) {
	for _, tc := range []struct {
		name string
		path string
	}{
		{"observation search", "/fhir/R4/Observation"},
		{"patient read", "/fhir/R4/Patient/"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, pt, m := newPanickyHarness(t)
			p := h.Patient("Lin")
			pt.set(func(r *http.Request) bool {
				return strings.HasPrefix(r.URL.Path, tc.path) && strings.Contains(r.URL.String(), p.ID)
			})
			b := newBrowser(t)
			resp, doc, body := b.get(h.LaunchURL(p.ID))
			// The fetch was started by the labs page's request; its id is the one logged.
			rid := resp.Header.Get("X-Request-Id")
			labsURL := resp.Request.URL.String()
			resp, body = pollUntilError(t, h, b, resp, doc, body)
			mustPlain500(t, resp, body)
			if pt.count() != 1 {
				t.Fatalf("panicking requests = %d, want 1", pt.count())
			}
			logs := panicLogs(t, h)
			if len(logs) != 1 {
				t.Fatalf("panic log lines = %d, want 1:\n%s", len(logs), h.Logs.String())
			}
			l := logs[0]
			if l.Level != "error" || l.RequestID != rid || l.Route != "/l/:launch" || l.Where != "fetch" {
				t.Errorf("panic logged as %+v, want level error, request_id %s, route /l/:launch, where fetch", l, rid)
			}
			if !strings.Contains(l.Stack, "panic_test.go") {
				t.Error("the panic's stack does not show where it happened")
			}
			if strings.Contains(h.Logs.String(), p.ID) || strings.Contains(h.Logs.String(), "injected") {
				t.Error("the log carries the panic's value (the patient id)")
			}
			if got := panicCount(t, m, "fetch"); got != 1 {
				t.Errorf("smartlabs_panics_total{where=fetch} = %v, want 1", got)
			}

			// Polls, filters and drill-downs show the error and fetch nothing again.
			id := strings.TrimPrefix(resp.Request.URL.Path, "/l/")
			for _, u := range []string{labsURL, labsURL + "?view=all", labsURL + "/a/2345-7"} {
				r, doc := getFragment(t, b, u, "labs-results", "")
				if r.StatusCode != http.StatusInternalServerError {
					t.Errorf("%s after the panic: %d, want 500", strings.TrimPrefix(u, h.AppURL), r.StatusCode)
				}
				if text(doc, "error-title") != "Something went wrong" {
					t.Errorf("%s: error title %q", strings.TrimPrefix(u, h.AppURL), text(doc, "error-title"))
				}
			}
			if pt.count() != 1 {
				t.Fatalf("views after the panic fetched again: %d panicking requests, want 1", pt.count())
			}
			if !server.CachedLaunch(appServer(t, h), id) {
				t.Error("the failed fetch's entry is gone: the next poll would fetch again")
			}
			// Refresh fetches again.
			r, body := htmxGet(t, b, labsURL+"/labs")
			doc, _ = goquery.NewDocumentFromReader(strings.NewReader(body))
			r, _ = pollUntilError(t, h, b, r, doc, body)
			if r.StatusCode != http.StatusInternalServerError || pt.count() != 2 {
				t.Errorf("Refresh: status %d, %d panicking requests; want 500 and 2", r.StatusCode, pt.count())
			}
			if got := panicCount(t, m, "fetch"); got != 2 {
				t.Errorf("smartlabs_panics_total{where=fetch} = %v after Refresh, want 2", got)
			}
			// Reloading the page is the user trying again too.
			r, doc, body = b.get(labsURL)
			if r, _ = pollUntilError(t, h, b, r, doc, body); r.StatusCode != http.StatusInternalServerError || pt.count() != 3 {
				t.Errorf("reload: status %d, %d panicking requests; want 500 and 3", r.StatusCode, pt.count())
			}

			// Another launch is served in full.
			q := h.Patient("Okafor")
			_, doc = mustLaunch(t, h, newBrowser(t), q)
			if rows := doc.Find(`[data-testid="result-row"]`).Length(); rows != q.ResultCount-q.EnteredInError {
				t.Errorf("another launch after the panic shows %d rows, want %d", rows, q.ResultCount-q.EnteredInError)
			}
		})
	}
}

// pollUntilError follows the view's updates from resp, as the browser does,
// until they show an error in the view's place, and returns the answer to
// the view asked for again (as a filter asks for it), which is that error
// with its status. Results that arrived before a fetch failed are shown
// while it runs; the updates then replace them with its error.
func pollUntilError(t *testing.T, h *harness, b *browser, resp *http.Response, doc *goquery.Document, body string) (*http.Response, string) {
	t.Helper()
	if resp.StatusCode != http.StatusOK {
		return resp, body
	}
	doc = mustFollowPolls(t, b, h.AppURL, doc)
	if doc.Find(`[data-testid="error"]`).Length() == 0 {
		t.Fatal("the view finished loading without an error")
	}
	view := *resp.Request.URL
	view.Path = strings.TrimSuffix(view.Path, "/labs")
	r, errDoc := getFragment(t, b, view.String(), "labs-results", "")
	body, _ = goquery.OuterHtml(errDoc.Selection)
	return r, body
}

// panicCount reads smartlabs_panics_total{where}.
func panicCount(t *testing.T, m *metrics.Metrics, where string) float64 {
	t.Helper()
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "smartlabs_panics_total" {
			continue
		}
		for _, c := range mf.GetMetric() {
			for _, l := range c.GetLabel() {
				if l.GetName() == "where" && l.GetValue() == where {
					return c.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// TestHandlerPanicIsLogged: a panic in a request handler (here in discovery,
// during /launch) is answered with the plain 500 page and a ref, logged with
// that request's id and route, and counted; the next request is served.
func TestHandlerPanicIsLogged(t *testing.T) {
	h, pt, m := newPanickyHarness(t)
	pt.set(func(r *http.Request) bool { return strings.HasSuffix(r.URL.Path, "/.well-known/smart-configuration") })
	b := newBrowser(t)
	p := h.Patient("Lin")
	resp, _, body := b.get(h.LaunchURL(p.ID))
	rid := mustPlain500(t, resp, body)
	logs := panicLogs(t, h)
	if len(logs) != 1 {
		t.Fatalf("panic log lines = %d, want 1:\n%s", len(logs), h.Logs.String())
	}
	if l := logs[0]; l.Level != "error" || l.RequestID != rid || l.Route != "/launch" || l.Where != "request" || !strings.Contains(l.Stack, "panic_test.go") {
		t.Errorf("panic logged as %+v, want level error, request_id %s, route /launch, where request, a stack", l, rid)
	}
	if strings.Contains(h.Logs.String(), "injected") {
		t.Error("the log carries the panic's value")
	}
	if got := panicCount(t, m, "request"); got != 1 {
		t.Errorf("smartlabs_panics_total{where=request} = %v, want 1", got)
	}
	pt.set(nil)
	mustLaunch(t, h, b, p)
}

// TestThemePanicKeepsServing: a panic while the EHR's style document is
// fetched (in its own goroutine, shared by the requests that wait for it)
// gives our default theme, is logged with the id and route of the request
// that started the fetch, and is counted; the same document is not fetched
// again at once, and the process keeps serving.
func TestThemePanicKeepsServing(t *testing.T) {
	h, pt, m := newPanickyHarness(t)
	b := newBrowser(t)
	labsURL := launchAndLoad(t, h, b, "Okafor")
	pt.set(func(r *http.Request) bool { return strings.HasSuffix(r.URL.Path, "/styles/smart.json") })
	for i := range 2 {
		resp, _, css := b.get(labsURL + "/theme.css")
		if resp.StatusCode != http.StatusOK || css != "" {
			t.Fatalf("theme.css %d: status %d, %q; want 200 and our default theme", i, resp.StatusCode, css)
		}
		if i == 0 {
			logs := panicLogs(t, h)
			if len(logs) != 1 {
				t.Fatalf("panic log lines = %d, want 1", len(logs))
			}
			if l := logs[0]; l.RequestID != resp.Header.Get("X-Request-Id") || l.Route != "/l/:launch/theme.css" || l.Where != "theme" {
				t.Errorf("panic logged as %+v", l)
			}
		}
	}
	if pt.count() != 1 || panicCount(t, m, "theme") != 1 {
		t.Errorf("panicking style requests = %d, counted %v; want 1 and 1", pt.count(), panicCount(t, m, "theme"))
	}
	mustLaunch(t, h, newBrowser(t), h.Patient("Lin"))
}
