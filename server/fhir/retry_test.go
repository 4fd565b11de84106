package fhir

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// fakeWaits records the waits a Client asks for instead of sleeping.
type fakeWaits struct {
	mu    sync.Mutex
	waits []time.Duration
}

func (f *fakeWaits) sleep(ctx context.Context, d time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.waits = append(f.waits, d)
	return ctx.Err()
}

func (f *fakeWaits) got() []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Duration(nil), f.waits...)
}

// answer is one scripted reply of the fake EHR.
type answer struct {
	status     int
	retryAfter string
	drop       bool // close the connection without an answer
}

var testNow = time.Date(2024, 3, 5, 14, 0, 0, 0, time.UTC)

// mustRetryClient returns a client for f whose waits go to w, with a fixed clock and jitter.
func mustRetryClient(t *testing.T, f *fakeEHR, w *fakeWaits) *Client {
	t.Helper()
	c := f.client()
	c.sleep = w.sleep
	c.Now = func() time.Time { return testNow }
	c.rand = func() float64 { return 0.5 }
	return c
}

// scripted answers request n (0-based) of the page it serves with script[n];
// past the script, and for a zero status, it serves ok.
func scripted(script []answer, ok func(w http.ResponseWriter, r *http.Request)) func(w http.ResponseWriter, r *http.Request) {
	var mu sync.Mutex
	n := 0
	return func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		i := n
		n++
		mu.Unlock()
		if i >= len(script) || script[i].status == 0 && !script[i].drop {
			ok(w, r)
			return
		}
		a := script[i]
		if a.drop {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
			return
		}
		if a.retryAfter != "" {
			w.Header().Set("Retry-After", a.retryAfter)
		}
		writeJSON(w, a.status, outcomeJSON("error", "busy"))
	}
}

func TestRetryPatient(t *testing.T) {
	patientOK := func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, `{"resourceType":"Patient","id":"`+testPatient+`","name":[{"family":"Doe","given":["Jane"]}]}`)
	}
	tests := []struct {
		name         string
		script       []answer
		maxWait      time.Duration
		wantRequests int
		wantWaits    []time.Duration
		wantKind     ErrorKind
		wantStatus   int
		wantPublic   string
		wantAttempts int
	}{
		{name: "503 then ok", script: []answer{{status: 503}}, wantRequests: 2,
			wantWaits: []time.Duration{187500 * time.Microsecond}},
		{name: "502 504 then ok", script: []answer{{status: 502}, {status: 504}}, wantRequests: 3,
			wantWaits: []time.Duration{187500 * time.Microsecond, 375 * time.Millisecond}},
		{name: "429 retry-after seconds", script: []answer{{status: 429, retryAfter: "2"}}, wantRequests: 2,
			wantWaits: []time.Duration{2 * time.Second}},
		{name: "503 retry-after http date", script: []answer{{status: 503, retryAfter: testNow.Add(3 * time.Second).Format(http.TimeFormat)}},
			wantRequests: 2, wantWaits: []time.Duration{3 * time.Second}},
		{name: "retry-after date in the past", script: []answer{{status: 503, retryAfter: testNow.Add(-time.Hour).Format(http.TimeFormat)}},
			wantRequests: 2, wantWaits: []time.Duration{0}},
		{name: "unreadable retry-after falls back to backoff", script: []answer{{status: 503, retryAfter: "soon"}},
			wantRequests: 2, wantWaits: []time.Duration{187500 * time.Microsecond}},
		{name: "connection dropped then ok", script: []answer{{drop: true}}, wantRequests: 2,
			wantWaits: []time.Duration{187500 * time.Microsecond}},
		{name: "429 asks for too long", script: []answer{{status: 429, retryAfter: "60"}}, wantRequests: 1,
			wantKind: KindUpstream, wantStatus: 429, wantPublic: publicThrottled, wantAttempts: 1},
		{name: "503 three times", script: []answer{{status: 503}, {status: 503}, {status: 503}}, wantRequests: 3,
			wantWaits: []time.Duration{187500 * time.Microsecond, 375 * time.Millisecond},
			wantKind:  KindUpstream, wantStatus: 503, wantPublic: publicText[KindUpstream], wantAttempts: 3},
		{name: "backoff capped by MaxRetryWait", script: []answer{{status: 503}, {status: 503}}, maxWait: 200 * time.Millisecond,
			wantRequests: 3, wantWaits: []time.Duration{150 * time.Millisecond, 150 * time.Millisecond}},
		{name: "500 not retried", script: []answer{{status: 500}}, wantRequests: 1,
			wantKind: KindUpstream, wantStatus: 500, wantPublic: publicText[KindUpstream], wantAttempts: 1},
		{name: "404 not retried", script: []answer{{status: 404}}, wantRequests: 1,
			wantKind: KindNotFound, wantStatus: 404, wantPublic: publicText[KindNotFound], wantAttempts: 1},
		{name: "401 not retried", script: []answer{{status: 401}}, wantRequests: 1,
			wantKind: KindUnauthorized, wantStatus: 401, wantPublic: publicText[KindUnauthorized], wantAttempts: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeEHR(t, scripted(tt.script, patientOK))
			w := &fakeWaits{}
			c := mustRetryClient(t, f, w)
			c.MaxRetryWait = tt.maxWait
			p, err := c.Patient(context.Background(), testPatient)
			if n := len(f.requests()); n != tt.wantRequests {
				t.Errorf("requests = %d, want %d", n, tt.wantRequests)
			}
			if diff := cmp.Diff(tt.wantWaits, w.got()); diff != "" {
				t.Errorf("waits mismatch (-want +got):\n%s", diff)
			}
			if tt.wantKind == "" {
				if err != nil || p == nil || p.Name != "Doe, Jane" {
					t.Fatalf("Patient = %+v, %v", p, err)
				}
				return
			}
			var fe *Error
			if !errors.As(err, &fe) {
				t.Fatalf("err = %v, want *Error", err)
			}
			got := []any{fe.Kind, fe.Status, fe.Public, fe.Attempts}
			want := []any{tt.wantKind, tt.wantStatus, tt.wantPublic, tt.wantAttempts}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("kind, status, public, attempts mismatch (-want +got):\n%s", diff)
			}
			if tt.wantAttempts > 1 && !strings.Contains(fe.Error(), fmt.Sprintf("after %d attempts", tt.wantAttempts)) {
				t.Errorf("Error() = %q does not count the attempts", fe.Error())
			}
			assertSafeError(t, err)
		})
	}
}

// TestRetrySearchPage: a failing page is retried on its own; the pages before
// it are kept, and a page that keeps failing leaves an incomplete list.
func TestRetrySearchPage(t *testing.T) {
	subj := "Patient/" + testPatient
	tests := []struct {
		name         string
		script       []answer // for page 2
		wantIDs      []string
		wantKind     ErrorKind
		wantRequests int
	}{
		{"page 2 recovers", []answer{{status: 503}, {status: 429, retryAfter: "1"}}, []string{"o1", "o2", "o3"}, "", 4},
		{"page 2 keeps failing", []answer{{status: 504}, {status: 504}, {status: 504}}, []string{"o1", "o2"}, KindUpstream, 4},
		{"page 2 dropped once", []answer{{drop: true}}, []string{"o1", "o2", "o3"}, "", 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeEHR(t, nil)
			page2 := scripted(tt.script, func(w http.ResponseWriter, r *http.Request) {
				writeJSON(w, 200, bundleJSON("", entry(obsJSON("o3", subj), "match")))
			})
			f.handle = func(w http.ResponseWriter, r *http.Request) {
				if pageOf(r) == "2" {
					page2(w, r)
					return
				}
				writeJSON(w, 200, bundleJSON(f.srv.URL+basePath+"/Observation?page=2", entry(obsJSON("o1", subj), "match"), entry(obsJSON("o2", subj), "match")))
			}
			res := mustRetryClient(t, f, &fakeWaits{}).Labs(context.Background(), testPatient)
			if diff := cmp.Diff(tt.wantIDs, ids(res.Observations)); diff != "" {
				t.Errorf("observations mismatch (-want +got):\n%s", diff)
			}
			if KindOf(res.Err) != tt.wantKind || res.Incomplete != (tt.wantKind != "") {
				t.Errorf("Err = %v, Incomplete = %v, want kind %q", res.Err, res.Incomplete, tt.wantKind)
			}
			if n := len(f.requests()); n != tt.wantRequests {
				t.Errorf("requests = %d, want %d", n, tt.wantRequests)
			}
		})
	}
}

// TestRetryNeverPastDeadline: a wait that would outlast the caller's deadline
// is not started, and a wait cut short by cancellation ends the retries.
func TestRetryNeverPastDeadline(t *testing.T) {
	f := newFakeEHR(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "2")
		writeJSON(w, 503, "")
	})
	waits := &fakeWaits{}
	c := mustRetryClient(t, f, waits)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, err := c.Patient(ctx, testPatient)
	if w := waits.got(); len(w) != 0 {
		t.Errorf("Patient waited %v although the deadline was nearer than Retry-After", w)
	}
	if KindOf(err) != KindUpstream || len(f.requests()) != 1 {
		t.Errorf("err = %v after %d requests, want upstream after 1", err, len(f.requests()))
	}

	f2 := newFakeEHR(t, func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 503, "") })
	c2 := f2.client()
	c2.RetryBase = time.Hour
	c2.MaxRetryWait = time.Hour
	c2.sleep = nil
	ctx2, cancel2 := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel2)
	start := time.Now()
	_, err = c2.Patient(ctx2, testPatient)
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("a cancelled wait took %v", d)
	}
	if KindOf(err) != KindUpstream || len(f2.requests()) != 1 {
		t.Errorf("err = %v after %d requests, want upstream after 1", err, len(f2.requests()))
	}
}

// TestSlowLorisBounded: an EHR that sends headers and then a byte at a time is
// cut off by the per-request deadline, timeouts are not retried, and the
// results of earlier pages stay.
func TestSlowLorisBounded(t *testing.T) {
	subj := "Patient/" + testPatient
	f := newFakeEHR(t, nil)
	f.handle = func(w http.ResponseWriter, r *http.Request) {
		if pageOf(r) == "1" {
			writeJSON(w, 200, bundleJSON(f.srv.URL+basePath+"/Observation?page=2", entry(obsJSON("o1", subj), "match")))
			return
		}
		w.Header().Set("Content-Type", "application/fhir+json")
		w.WriteHeader(200)
		body := bundleJSON("", entry(obsJSON("o2", subj), "match"))
		for i := 0; i < len(body); i++ {
			if _, err := w.Write([]byte{body[i]}); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	c := mustRetryClient(t, f, &fakeWaits{})
	// Page 1 must fit in the timeout on a loaded machine; the trickle takes 20 ms a byte.
	c.RequestTimeout = time.Second
	start := time.Now()
	res := c.Labs(context.Background(), testPatient)
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Labs took %v with a 1 s request timeout", d)
	}
	var fe *Error
	if !errors.As(res.Err, &fe) || fe.Kind != KindTimeout || fe.Status != 200 || fe.Public != publicText[KindTimeout] {
		t.Fatalf("Err = %v, want a timeout after HTTP 200", res.Err)
	}
	if diff := cmp.Diff([]string{"o1"}, ids(res.Observations)); diff != "" || !res.Incomplete {
		t.Errorf("observations mismatch (-want +got):\n%s (incomplete %v)", diff, res.Incomplete)
	}
	if n := len(f.requests()); n != 2 {
		t.Errorf("requests = %d, want 2 (no retry of a timeout)", n)
	}
}

func TestParseRetryAfter(t *testing.T) {
	tests := []struct {
		in     string
		want   time.Duration
		wantOK bool
	}{
		{"", 0, false},
		{"0", 0, true},
		{" 7 ", 7 * time.Second, true},
		{"-1", 0, false},
		{"99999999999999", time.Hour, true},
		{"1.5", 0, false},
		{testNow.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{testNow.Add(-90 * time.Second).Format(http.TimeFormat), 0, true},
		{"Tuesday", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, ok := parseRetryAfter(tt.in, testNow)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("parseRetryAfter(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

// TestBackoffJitter: waits double from RetryBase, stay within [d/2, d] and never exceed MaxRetryWait.
func TestBackoffJitter(t *testing.T) {
	for _, r := range []float64{0, 0.25, 0.999} {
		c := &Client{RetryBase: 100 * time.Millisecond, MaxRetryWait: time.Second, rand: func() float64 { return r }}
		for attempt, full := range []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond, time.Second, time.Second} {
			d, ok := c.backoff(attempt+1, &Error{})
			if !ok || d < full/2 || d > full {
				t.Errorf("rand %v attempt %d: wait %v, want within [%v, %v]", r, attempt+1, d, full/2, full)
			}
		}
	}
}
