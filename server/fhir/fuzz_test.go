package fhir

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// FuzzDecodeBundle feeds arbitrary bodies to a labs search: the client never
// panics, and whatever it returns belongs to the patient asked for.
func FuzzDecodeBundle(f *testing.F) {
	for _, name := range []string{"obs-quantity-comparator", "obs-components", "obs-absent", "obs-corrected"} {
		b, err := os.ReadFile("testdata/" + name + ".json")
		if err != nil {
			f.Fatal(err)
		}
		f.Add(append(append([]byte(`{"resourceType":"Bundle","type":"searchset","entry":[{"resource":`), b...), `,"search":{"mode":"match"}}]}`...))
	}
	f.Add([]byte(`{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"OperationOutcome","issue":[{"severity":"warning","details":{"coding":[{"code":"4119"}]}}]},"search":{"mode":"outcome"}}]}`))
	f.Add([]byte(`{"resourceType":"Bundle","link":[{"relation":"next","url":"http://elsewhere.example/x"}]}`))
	f.Add([]byte(`{`))

	var body atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/fhir+json")
		w.Write(body.Load().([]byte))
	}))
	f.Cleanup(srv.Close)
	f.Fuzz(func(t *testing.T, data []byte) {
		body.Store(data)
		// A relative next link resolves anew on every page, so the same body
		// pages until the bound: a small one keeps each run short.
		c := &Client{HTTP: srv.Client(), BaseURL: srv.URL, Token: "t", ClientID: "c", MaxPages: 8}
		// Whatever the body, the search ends on its own: a hang would hold a
		// clinician's view until its timeout.
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		res := c.Labs(ctx, "p1")
		if ctx.Err() != nil {
			t.Fatalf("the search did not end within 20 s: %v", res.Err)
		}
		if res == nil {
			t.Fatal("nil result")
		}
		for _, o := range res.Observations {
			if o.Subject != "Patient/p1" && !strings.HasSuffix(o.Subject, "/Patient/p1") {
				t.Fatalf("observation for subject %q returned", o.Subject)
			}
			if o.Status == "entered-in-error" {
				t.Fatal("entered-in-error returned")
			}
		}
		if res.Err != nil && !res.Incomplete {
			t.Fatal("error without Incomplete")
		}
	})
}
