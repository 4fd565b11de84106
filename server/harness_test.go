package server_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"smartlabs/server"
	"smartlabs/server/servertest"
)

type harness = servertest.Env
type harnessOptions = servertest.Options

var newHarness = servertest.New

const clientID = servertest.ClientID

// exchange is one HTTP exchange the test browser saw.
type exchange struct {
	URL     string
	Status  int
	Header  http.Header
	Body    string
	Request http.Header
}

// browser is a cookie-keeping HTTP client that records every exchange,
// redirects included, so tests can assert what reached "the browser".
type browser struct {
	t       *testing.T
	c       *http.Client
	mu      sync.Mutex
	seen    []exchange
	headers http.Header
}

func newBrowser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	b := &browser{t: t, headers: http.Header{}}
	b.c = &http.Client{Jar: jar, Transport: recorder{b}, Timeout: 30 * time.Second}
	return b
}

// withoutCookies is a browser that drops every cookie, as one that blocks
// third-party cookies in an EHR frame does.
func newCookielessBrowser(t *testing.T) *browser {
	b := newBrowser(t)
	b.c.Jar = nil
	return b
}

type recorder struct{ b *browser }

func (r recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	for k, v := range r.b.headers {
		req.Header[k] = v
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	// The body is recorded as it is read, and the response handed on at
	// once: the client takes its cookies when the headers arrive, as a
	// browser does, also when the body is streamed long after.
	resp.Body = &recordedBody{ReadCloser: resp.Body, done: func(body []byte) {
		r.b.mu.Lock()
		r.b.seen = append(r.b.seen, exchange{URL: req.URL.String(), Status: resp.StatusCode, Header: resp.Header.Clone(), Body: string(body), Request: req.Header.Clone()})
		r.b.mu.Unlock()
	}}
	return resp, nil
}

// recordedBody keeps what is read of a body and hands it to done once, at
// its end or when it is closed.
type recordedBody struct {
	io.ReadCloser
	buf  bytes.Buffer
	done func([]byte)
	once sync.Once
}

func (rb *recordedBody) Read(p []byte) (int, error) {
	n, err := rb.ReadCloser.Read(p)
	rb.buf.Write(p[:n])
	if err != nil {
		rb.once.Do(func() { rb.done(rb.buf.Bytes()) })
	}
	return n, err
}

func (rb *recordedBody) Close() error {
	err := rb.ReadCloser.Close()
	rb.once.Do(func() { rb.done(rb.buf.Bytes()) })
	return err
}

// get follows redirects and returns the final response and its document.
func (b *browser) get(u string) (*http.Response, *goquery.Document, string) {
	b.t.Helper()
	resp, err := b.c.Get(u)
	if err != nil {
		b.t.Fatalf("GET: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	doc, err := goquery.NewDocumentFromReader(bytes.NewReader(body))
	if err != nil {
		b.t.Fatal(err)
	}
	return resp, doc, string(body)
}

// noRedirect returns a copy of b that stops at the first response.
func (b *browser) noRedirect() *browser {
	c := *b.c
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &browser{t: b.t, c: &c, headers: b.headers}
}

func (b *browser) exchanges() []exchange {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]exchange(nil), b.seen...)
}

func text(doc *goquery.Document, testid string) string {
	return strings.TrimSpace(doc.Find(`[data-testid="` + testid + `"]`).First().Text())
}

// getList GETs u, a page of All results, and every page after it (following
// its Next link, as a clinician would), and returns the first response and a
// document whose results table holds the rows of every page, and the HTML
// of every page, one after another.
func (b *browser) getList(u string) (*http.Response, *goquery.Document, string) {
	b.t.Helper()
	resp, doc, body := b.get(u)
	table := doc.Find(`[data-testid="results"] tbody`).First()
	next := doc.Find(`[data-testid="list-next"]`).AttrOr("href", "")
	for range 1000 {
		if next == "" {
			return resp, doc, body
		}
		nu, err := resp.Request.URL.Parse(next)
		if err != nil {
			b.t.Fatalf("next page link %q: %v", next, err)
		}
		r, page, pageBody := b.get(nu.String())
		if r.StatusCode != http.StatusOK {
			b.t.Fatalf("GET %s: %d", nu.Path, r.StatusCode)
		}
		table.AppendSelection(page.Find(`[data-testid="result-row"]`))
		body += pageBody
		next = page.Find(`[data-testid="list-next"]`).AttrOr("href", "")
	}
	b.t.Fatal("All results has too many pages")
	return nil, nil, ""
}

// appServer is the app the harness serves, for the tests that look inside it.
func appServer(t *testing.T, h *harness) *server.Server {
	t.Helper()
	srv, ok := h.Handler.(*server.Server)
	if !ok {
		t.Fatalf("harness handler is %T, want *server.Server", h.Handler)
	}
	return srv
}
