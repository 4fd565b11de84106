package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"smartlabs/server/fhir"
)

// pagedEHR is a FHIR server with a five-page search that counts the TCP
// connections it accepts.
func pagedEHR(t testing.TB) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var conns atomic.Int64
	var srv *httptest.Server
	srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/fhir+json")
		if strings.Contains(r.URL.Path, "/Patient/") {
			fmt.Fprint(w, `{"resourceType":"Patient","id":"p1"}`)
			return
		}
		page := 1
		fmt.Sscanf(r.URL.Query().Get("page"), "%d", &page)
		next := ""
		if page < 5 {
			next = fmt.Sprintf(`,{"relation":"next","url":"%s/Observation?page=%d"}`, srv.URL, page+1)
		}
		fmt.Fprintf(w, `{"resourceType":"Bundle","link":[{"relation":"self","url":"x"}%s],"entry":[{"resource":{"resourceType":"Observation","id":"o%d","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/p1"}}}]}`, next, page)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, &conns
}

// view reads Patient and searches labs concurrently, as the server's fetch does,
// each with its own fhir.Client (a per-request copy of the shared http.Client).
func view(t testing.TB, hc *http.Client, base string) {
	c := &fhir.Client{HTTP: hc, BaseURL: base, Token: "t", ClientID: "c"}
	var wg sync.WaitGroup
	wg.Go(func() {
		if _, err := c.Patient(context.Background(), "p1"); err != nil {
			t.Error(err)
		}
	})
	if res := c.Labs(context.Background(), "p1"); res.Err != nil || len(res.Observations) != 5 {
		t.Errorf("labs: %d results, %v", len(res.Observations), res.Err)
	}
	wg.Wait()
}

// TestConnectionReuse: views share newHTTPClient's keep-alive pool. The
// first view opens about two connections (Patient and the search run at
// once); 20 later views, 120 requests, open almost none: a connection goes
// back to the pool just after its body is read, so a request sent in that
// instant may still dial, which is why a few are allowed.
func TestConnectionReuse(t *testing.T) {
	srv, conns := pagedEHR(t)
	hc := newHTTPClient(nil)
	view(t, hc, srv.URL)
	first := conns.Load()
	if first < 1 || first > 4 {
		t.Errorf("first view opened %d connections, want 1 to 4", first)
	}
	for range 20 {
		view(t, hc, srv.URL)
	}
	if got := conns.Load() - first; got > 4 {
		t.Errorf("20 later views (120 requests) opened %d new connections, want at most 4", got)
	}
}

// BenchmarkView measures one view (Patient + a five-page search) over the
// shared pool, and reports new TCP connections per view.
func BenchmarkView(b *testing.B) {
	srv, conns := pagedEHR(b)
	hc := newHTTPClient(nil)
	b.ReportAllocs()
	for b.Loop() {
		view(b, hc, srv.URL)
	}
	b.ReportMetric(float64(conns.Load())/float64(b.N), "conns/view")
}
