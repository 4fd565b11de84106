package fhir

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"smartlabs/server/panics"
)

// capabilityJSON is a CapabilityStatement whose Observation entry lists
// params (JSON objects), with rest-level params and contained resources.
func capabilityJSON(params, restParams, contained string) string {
	return `{"resourceType":"CapabilityStatement","status":"active","kind":"instance","fhirVersion":"4.0.1",` +
		`"contained":[` + contained + `],` +
		`"rest":[{"mode":"server","searchParam":[` + restParams + `],"resource":[` +
		`{"type":"Patient","searchParam":[{"name":"_lastUpdated","type":"date"}]},` +
		`{"type":"Observation","searchParam":[{"name":"patient","type":"reference"}` + params + `]}]}]}`
}

func TestParseCapabilities(t *testing.T) {
	const missingParam = `{"resourceType":"SearchParameter","id":"obs-date","url":"https://ehr.example/SearchParameter/obs-date","code":"date","base":["Observation"],"type":"date","modifier":["missing"]}`
	const otherParam = `{"resourceType":"SearchParameter","id":"obs-date","code":"date","base":["Observation"],"type":"date","modifier":["exact"]}`
	tests := []struct {
		name string
		body string
		want string // SliceParam
	}{
		{"Epic-like: no slicing parameter", capabilityJSON(``, ``, ``), ""},
		{"_lastUpdated on another resource only", capabilityJSON(`,{"name":"date"}`, ``, ``), ""},
		{"_lastUpdated on Observation", capabilityJSON(`,{"name":"_lastUpdated","type":"date"}`, ``, ``), ParamLastUpdated},
		{"_lastUpdated for every resource", capabilityJSON(``, `{"name":"_lastUpdated","type":"date"}`, ``), ParamLastUpdated},
		{"_lastUpdated beats date", capabilityJSON(`,{"name":"date"},{"name":"date:missing"},{"name":"_lastUpdated"}`, ``, ``), ParamLastUpdated},
		{"date without missing", capabilityJSON(`,{"name":"date","type":"date"}`, ``, ``), ""},
		{"date and date:missing listed", capabilityJSON(`,{"name":"date","type":"date"},{"name":"date:missing"}`, ``, ``), ParamDate},
		{"date defined by a contained SearchParameter with missing", capabilityJSON(`,{"name":"date","definition":"#obs-date"}`, ``, missingParam), ParamDate},
		{"date defined by the contained SearchParameter's url", capabilityJSON(`,{"name":"date","definition":"https://ehr.example/SearchParameter/obs-date"}`, ``, missingParam), ParamDate},
		{"contained SearchParameter without missing", capabilityJSON(`,{"name":"date","definition":"#obs-date"}`, ``, otherParam), ""},
		{"contained SearchParameter not referenced", capabilityJSON(`,{"name":"date","definition":"http://hl7.org/fhir/SearchParameter/clinical-date"}`, ``, missingParam), ""},
		{"date:missing without date", capabilityJSON(`,{"name":"date:missing"}`, ``, ``), ""},
		{"client mode only", strings.Replace(capabilityJSON(`,{"name":"_lastUpdated"}`, ``, ``), `"mode":"server"`, `"mode":"client"`, 1), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			caps, err := ParseCapabilities([]byte(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if got := caps.SliceParam(); got != tt.want {
				t.Errorf("SliceParam = %q, want %q (%+v)", got, tt.want, caps)
			}
		})
	}
	for _, bad := range []string{`{"resourceType":"Bundle"}`, `{`, `[]`} {
		if _, err := ParseCapabilities([]byte(bad)); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}

// TestCapabilityCache: one read per issuer for concurrent launches, without
// the token; read again after the TTL; a failure remembered for a minute.
func TestCapabilityCache(t *testing.T) {
	var reads atomic.Int32
	var failing atomic.Bool
	f := newFakeEHR(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != basePath+"/metadata" {
			t.Errorf("unexpected request %s", r.URL.Path)
		}
		reads.Add(1)
		if r.Header.Get("Authorization") != "" {
			t.Error("the token was sent for the CapabilityStatement")
		}
		if failing.Load() {
			writeJSON(w, 500, outcomeJSON("error", "x"))
			return
		}
		writeJSON(w, 200, capabilityJSON(`,{"name":"_lastUpdated"}`, ``, ``))
	})
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	cc := &CapabilityCache{TTL: time.Hour, Now: clock}

	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			caps, err := cc.Get(context.Background(), f.client())
			if err != nil || caps.SliceParam() != ParamLastUpdated {
				t.Errorf("Get = %+v, %v", caps, err)
			}
		}()
	}
	wg.Wait()
	if n := reads.Load(); n != 1 {
		t.Errorf("%d reads for 8 concurrent launches, want 1", n)
	}
	advance(59 * time.Minute)
	if _, err := cc.Get(context.Background(), f.client()); err != nil || reads.Load() != 1 {
		t.Errorf("within the TTL: err %v, reads %d", err, reads.Load())
	}
	advance(2 * time.Minute)
	failing.Store(true)
	c := f.client()
	c.MaxAttempts = 1
	if caps, err := cc.Get(context.Background(), c); err == nil || caps.SliceParam() != "" || reads.Load() != 2 {
		t.Errorf("after the TTL, failing: %+v, %v, reads %d", caps, err, reads.Load())
	}
	failing.Store(false)
	if _, err := cc.Get(context.Background(), f.client()); err == nil || reads.Load() != 2 {
		t.Errorf("a failure is not remembered: err %v, reads %d", err, reads.Load())
	}
	advance(capabilityFailTTL)
	if caps, err := cc.Get(context.Background(), f.client()); err != nil || caps.SliceParam() != ParamLastUpdated || reads.Load() != 3 {
		t.Errorf("after a minute: %+v, %v, reads %d", caps, err, reads.Load())
	}
}

// panicTransport panics on every request.
type panicTransport struct{}

func (panicTransport) RoundTrip(*http.Request) (*http.Response, error) { panic("transport bug") }

// TestCapabilityReadPanic: a panic while reading the statement becomes the
// read's error for every launch waiting on it, and a search's goroutine
// panics again with it, so the fetch's recovery handles it.
func TestCapabilityReadPanic(t *testing.T) {
	c := &Client{HTTP: &http.Client{Transport: panicTransport{}}, BaseURL: "https://ehr.example/fhir/R4", MaxParallel: 2,
		Capabilities: &CapabilityCache{}}
	var pe *panics.Error
	if _, err := c.Capabilities.Get(context.Background(), c); !errors.As(err, &pe) {
		t.Fatalf("Get: %v, want a *panics.Error", err)
	}
	lc := &labsCall{c: c, caps: c.readCapabilities(context.Background())}
	defer func() {
		if r := recover(); r == nil || !errors.As(r.(error), &pe) {
			t.Errorf("recovered %v, want a *panics.Error", r)
		}
	}()
	lc.divert(context.Background(), nil)
	t.Error("the read's panic did not surface")
}
