package server_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"smartlabs/server"
)

// styleGate is a transport that lets a test decide how the EHR's style
// document answers: held until released, a network error, or a given
// status and body. It counts the requests for it.
type styleGate struct {
	mu      sync.Mutex
	n       int
	hold    chan struct{} // when not nil, requests wait for it to close
	arrived chan struct{} // gets one value per request
	answer  func() (*http.Response, error)
}

func newStyleGate() *styleGate { return &styleGate{arrived: make(chan struct{}, 100)} }

func (g *styleGate) RoundTrip(r *http.Request) (*http.Response, error) {
	if !strings.HasSuffix(r.URL.Path, "/styles/smart.json") {
		return http.DefaultTransport.RoundTrip(r)
	}
	g.mu.Lock()
	g.n++
	hold, answer := g.hold, g.answer
	g.mu.Unlock()
	g.arrived <- struct{}{}
	if hold != nil {
		select {
		case <-hold:
		case <-r.Context().Done():
			return nil, r.Context().Err()
		}
	}
	if answer != nil {
		return answer()
	}
	return http.DefaultTransport.RoundTrip(r)
}

func (g *styleGate) count() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.n
}

func (g *styleGate) set(hold chan struct{}, answer func() (*http.Response, error)) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.hold, g.answer = hold, answer
}

func (g *styleGate) waitArrival(t *testing.T) {
	t.Helper()
	select {
	case <-g.arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("the style document was never requested")
	}
}

// themeHarness launches a patient with the style gate in place and returns
// the launch's theme.css URL and the browser.
func themeHarness(t *testing.T) (*styleGate, string, *browser) {
	t.Helper()
	g := newStyleGate()
	h := newHarness(t, harnessOptions{Deps: func(d *server.Deps) { d.HTTPClient.Transport = g }})
	b := newBrowser(t)
	labsURL := launchAndLoad(t, h, b, "Okafor")
	return g, labsURL + "/theme.css", b
}

func getCSS(t *testing.T, b *browser, u string) string {
	t.Helper()
	resp, _, css := b.get(u)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("theme.css: status %d", resp.StatusCode)
	}
	return css
}

const themeProbe = "--sl-bg: #eef1f4;"

// TestThemeOutlivesAbortedRequest: a request for theme.css that goes away
// while the style document is on its way neither ends that fetch nor leaves
// "no theme" cached: the next request gets the EHR's theme.
func TestThemeOutlivesAbortedRequest(t *testing.T) {
	g, themeURL, b := themeHarness(t)
	hold := make(chan struct{})
	g.set(hold, nil)
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, themeURL, nil)
	errc := make(chan error, 1)
	go func() {
		resp, err := b.c.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	g.waitArrival(t)
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("aborted request: err %v", err)
	}
	close(hold)
	if css := getCSS(t, b, themeURL); !strings.Contains(css, themeProbe) {
		t.Fatalf("after an aborted request the theme is %q, want the EHR's", css)
	}
	if n := g.count(); n != 1 {
		t.Errorf("style document requests = %d, want 1 (the aborted request's fetch went on)", n)
	}
}

// TestThemeOneFetchPerURL: many requests for one style document while it is
// on its way make one fetch, and all get its theme.
func TestThemeOneFetchPerURL(t *testing.T) {
	g, themeURL, b := themeHarness(t)
	hold := make(chan struct{})
	g.set(hold, nil)
	const n = 8
	css := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := b.c.Get(themeURL)
			if err != nil {
				t.Error(err)
				return
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			css[i] = string(body)
		}()
	}
	g.waitArrival(t)
	// Give the other requests time to reach the server while the fetch is
	// held, so that without one fetch per URL they would each fetch. The
	// assertions hold however many of them arrive after it ends (they find
	// the cache): the pause only lets the test catch a regression.
	time.Sleep(100 * time.Millisecond)
	close(hold)
	wg.Wait()
	for i, c := range css {
		if !strings.Contains(c, themeProbe) {
			t.Errorf("request %d got %q", i, c)
		}
	}
	if got := g.count(); got != 1 {
		t.Errorf("style document requests = %d for %d concurrent requests, want 1", got, n)
	}
}

// TestThemeFailureCache: a failure is cached only when the EHR answered
// (a status other than 200, a body too large); a network error is not, so
// the next request tries again.
func TestThemeFailureCache(t *testing.T) {
	for _, tc := range []struct {
		name      string
		answer    func() (*http.Response, error)
		wantFetch int // style requests after the failure and a second request
	}{
		{"network error", func() (*http.Response, error) { return nil, errors.New("connection reset") }, 2},
		{"status 500", func() (*http.Response, error) { return response(500, "oops"), nil }, 1},
		{"body too large", func() (*http.Response, error) { return response(200, strings.Repeat(" ", 1<<20)), nil }, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, themeURL, b := themeHarness(t)
			g.set(nil, tc.answer)
			if css := getCSS(t, b, themeURL); css != "" {
				t.Fatalf("a failed style document gave %q, want our default (empty)", css)
			}
			g.set(nil, nil) // the EHR is fine again
			css := getCSS(t, b, themeURL)
			if got := g.count(); got != tc.wantFetch {
				t.Fatalf("style requests = %d, want %d", got, tc.wantFetch)
			}
			if want := tc.wantFetch == 2; strings.Contains(css, themeProbe) != want {
				t.Errorf("second request's theme = %q; EHR's theme wanted: %v", css, want)
			}
		})
	}
}

func response(status int, body string) *http.Response {
	return &http.Response{StatusCode: status, Status: http.StatusText(status), Header: http.Header{},
		Body: io.NopCloser(strings.NewReader(body)), ProtoMajor: 1, ProtoMinor: 1}
}

// styleSrc is the style-src directive of a response's CSP.
func styleSrc(resp *http.Response) string {
	for _, d := range strings.Split(resp.Header.Get("Content-Security-Policy"), ";") {
		if d = strings.TrimSpace(d); strings.HasPrefix(d, "style-src ") {
			return d
		}
	}
	return ""
}

// TestThemeInlineOnceKnown: a page links the EHR's theme while this server
// has not fetched it yet; once it has, every page carries the theme inline
// instead, so no request holds back the first paint, and that response's
// CSP allows exactly that stylesheet by its hash. Other responses allow no
// inline style. A style document that gave no theme costs no request.
func TestThemeInlineOnceKnown(t *testing.T) {
	g, themeURL, b := themeHarness(t)
	labsURL := strings.TrimSuffix(themeURL, "/theme.css")

	resp, doc, _ := b.get(labsURL)
	if n := doc.Find(`link[data-testid=theme]`).Length(); n != 1 || doc.Find(`style`).Length() != 0 {
		t.Fatalf("before the theme is fetched: %d theme links, %d styles; want the link alone", n, doc.Find(`style`).Length())
	}
	if got := styleSrc(resp); got != "style-src 'self'" {
		t.Fatalf("linked theme: CSP %q, want style-src 'self' alone", got)
	}

	css := getCSS(t, b, themeURL)
	if !strings.Contains(css, themeProbe) {
		t.Fatalf("theme.css = %q", css)
	}
	// Twice: the first renders the page, the second (the list is complete) is the kept copy.
	for i := range 2 {
		resp, doc, _ := b.get(labsURL)
		if n := doc.Find(`link[data-testid=theme]`).Length(); n != 0 {
			t.Fatalf("page %d: %d theme links once the theme is known, want it inline", i, n)
		}
		style := doc.Find(`head style[data-testid=theme]`)
		if style.Length() != 1 || style.Text() != css {
			t.Fatalf("page %d: inline theme %q, want theme.css's %q", i, style.Text(), css)
		}
		sum := sha256.Sum256([]byte(style.Text()))
		want := "style-src 'self' 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
		if got := styleSrc(resp); got != want {
			t.Fatalf("page %d: CSP %q, want %q", i, got, want)
		}
	}
	if resp, _, _ := b.get(themeURL); styleSrc(resp) != "style-src 'self'" {
		t.Errorf("theme.css: CSP %q allows an inline style", styleSrc(resp))
	}
	if n := g.count(); n != 1 {
		t.Errorf("style document requests = %d, want 1", n)
	}
}

// TestNoThemeNoRequest: when the EHR's style document gave no theme, pages
// neither link nor inline one (our default theme, without a request for it).
func TestNoThemeNoRequest(t *testing.T) {
	g, themeURL, b := themeHarness(t)
	g.set(nil, func() (*http.Response, error) { return response(500, "oops"), nil })
	if css := getCSS(t, b, themeURL); css != "" {
		t.Fatalf("a failed style document gave %q", css)
	}
	resp, doc, _ := b.get(strings.TrimSuffix(themeURL, "/theme.css"))
	if n := doc.Find(`[data-testid=theme]`).Length(); n != 0 {
		t.Errorf("%d theme elements after the style document failed, want none", n)
	}
	if got := styleSrc(resp); got != "style-src 'self'" {
		t.Errorf("CSP %q, want style-src 'self' alone", got)
	}
}
