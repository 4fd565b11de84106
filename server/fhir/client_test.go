package fhir

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const (
	testToken    = "tok-SECRET-0123456789"
	testClientID = "client-abc"
	testPatient  = "eQ7xPt42"
	basePath     = "/fhir/R4"
)

// recorded is one request the fake EHR received.
type recorded struct {
	URI    string
	Header http.Header
}

// fakeEHR is an httptest server whose behaviour is the handle function field.
type fakeEHR struct {
	srv    *httptest.Server
	mu     sync.Mutex
	reqs   []recorded
	handle func(w http.ResponseWriter, r *http.Request)
}

// newFakeEHR starts a fake EHR that records requests and then calls handle.
func newFakeEHR(t *testing.T, handle func(w http.ResponseWriter, r *http.Request)) *fakeEHR {
	t.Helper()
	f := &fakeEHR{handle: handle}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.reqs = append(f.reqs, recorded{URI: r.URL.RequestURI(), Header: r.Header.Clone()})
		f.mu.Unlock()
		if f.handle != nil {
			f.handle(w, r)
		}
	}))
	t.Cleanup(f.srv.Close)
	return f
}

// requests returns the recorded request URIs.
func (f *fakeEHR) requests() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, r := range f.reqs {
		out = append(out, r.URI)
	}
	return out
}

// client returns a Client for the fake EHR.
func (f *fakeEHR) client() *Client {
	return &Client{
		HTTP:           f.srv.Client(),
		BaseURL:        f.srv.URL + basePath,
		Token:          testToken,
		ClientID:       testClientID,
		PageSize:       50,
		RequestTimeout: 2 * time.Second,
		// Retries wait no real time in tests.
		sleep: func(ctx context.Context, d time.Duration) error { return ctx.Err() },
	}
}

// obsJSON is a minimal laboratory Observation.
func obsJSON(id, subject string) string {
	return fmt.Sprintf(`{"resourceType":"Observation","id":%q,"status":"final","code":{"text":"Test %s"},`+
		`"subject":{"reference":%q},"effectiveDateTime":"2024-03-05T14:07:00Z","valueQuantity":{"value":1.0,"unit":"g"}}`,
		id, id, subject)
}

// outcomeJSON is an OperationOutcome with one issue carrying an Epic code.
func outcomeJSON(severity, code string) string {
	return fmt.Sprintf(`{"resourceType":"OperationOutcome","issue":[{"severity":%q,"code":"processing",`+
		`"details":{"coding":[{"system":"urn:oid:1.2.840.114350.1.13.0.1.7.2.657369","code":%q}],"text":"Details about Jane Doe"},`+
		`"diagnostics":"Jane Doe MRN 203713"}]}`, severity, code)
}

// entry wraps a resource as a Bundle entry with a search mode.
func entry(resource, mode string) string {
	return fmt.Sprintf(`{"fullUrl":"urn:x","resource":%s,"search":{"mode":%q}}`, resource, mode)
}

// bundleJSON is a searchset Bundle with an optional next link.
func bundleJSON(next string, entries ...string) string {
	links := `{"relation":"self","url":"urn:self"}`
	if next != "" {
		links += fmt.Sprintf(`,{"relation":"next","url":%q}`, next)
	}
	return fmt.Sprintf(`{"resourceType":"Bundle","type":"searchset","link":[%s],"entry":[%s]}`, links, strings.Join(entries, ","))
}

// writeJSON answers with status and body as FHIR JSON.
func writeJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/fhir+json")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

// pageOf returns the "page" query parameter, "1" when absent.
func pageOf(r *http.Request) string {
	if p := r.URL.Query().Get("page"); p != "" {
		return p
	}
	return "1"
}

// ids lists the ids of observations.
func ids(obs []Observation) []string {
	var out []string
	for _, o := range obs {
		out = append(out, o.ID)
	}
	return out
}

// assertSafeError checks that err's text holds no token, patient id or URL.
func assertSafeError(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	s := err.Error()
	for _, bad := range []string{testToken, testPatient, "http://", "https://", "?", "Jane", "203713"} {
		if strings.Contains(s, bad) {
			t.Errorf("error text %q contains %q", s, bad)
		}
	}
	var fe *Error
	if !errors.As(err, &fe) {
		t.Fatalf("error %v is not a *fhir.Error", err)
	}
	if fe.Public == "" || strings.Contains(fe.Public, testToken) {
		t.Errorf("bad public text %q", fe.Public)
	}
}

// threePages serves three pages of two observations each, with opaque next links.
func threePages(f *fakeEHR) func(w http.ResponseWriter, r *http.Request) {
	next2 := "/fhir/R4/paging/x%2Fy;z?page=2&session=a%2Bb%3D"
	next3 := "/fhir/R4/paging/x%2Fy;z?page=3&session=a%2Bb%3D"
	subj := "Patient/" + testPatient
	return func(w http.ResponseWriter, r *http.Request) {
		switch pageOf(r) {
		case "1":
			writeJSON(w, 200, bundleJSON(f.srv.URL+next2, entry(obsJSON("o1", subj), "match"), entry(obsJSON("o2", subj), "match")))
		case "2":
			writeJSON(w, 200, bundleJSON(f.srv.URL+next3, entry(obsJSON("o3", subj), "match"), entry(obsJSON("o4", "https://x.example/fhir/"+subj), "match")))
		case "3":
			writeJSON(w, 200, bundleJSON("", entry(obsJSON("o5", subj), "match"), entry(obsJSON("o6", subj), "match")))
		default:
			writeJSON(w, 404, outcomeJSON("error", "4100"))
		}
	}
}

func TestLabsPaging(t *testing.T) {
	f := newFakeEHR(t, nil)
	f.handle = threePages(f)
	res := f.client().Labs(context.Background(), testPatient)
	if res.Err != nil || res.Incomplete {
		t.Fatalf("Labs: Err=%v Incomplete=%v", res.Err, res.Incomplete)
	}
	wantReqs := []string{
		"/fhir/R4/Observation?_count=50&category=laboratory&patient=" + testPatient,
		"/fhir/R4/paging/x%2Fy;z?page=2&session=a%2Bb%3D",
		"/fhir/R4/paging/x%2Fy;z?page=3&session=a%2Bb%3D",
	}
	if diff := cmp.Diff(wantReqs, f.requests()); diff != "" {
		t.Errorf("requests mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"o1", "o2", "o3", "o4", "o5", "o6"}, ids(res.Observations)); diff != "" {
		t.Errorf("observations mismatch (-want +got):\n%s", diff)
	}
	if res.Pages != 3 {
		t.Errorf("Pages = %d, want 3", res.Pages)
	}
}

func TestLabsDefaultPageSize(t *testing.T) {
	f := newFakeEHR(t, func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, bundleJSON("")) })
	c := f.client()
	c.PageSize = 0
	c.BaseURL += "/" // A trailing slash is tolerated.
	res := c.Labs(context.Background(), testPatient)
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	want := []string{"/fhir/R4/Observation?_count=100&category=laboratory&patient=" + testPatient}
	if diff := cmp.Diff(want, f.requests()); diff != "" {
		t.Errorf("requests mismatch (-want +got):\n%s", diff)
	}
}

func TestHeadersSent(t *testing.T) {
	f := newFakeEHR(t, nil)
	labs := threePages(f)
	f.handle = func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/Patient/"+testPatient) {
			writeJSON(w, 200, `{"resourceType":"Patient","id":"`+testPatient+`"}`)
			return
		}
		labs(w, r)
	}
	c := f.client()
	if _, err := c.Patient(context.Background(), testPatient); err != nil {
		t.Fatal(err)
	}
	if res := c.Labs(context.Background(), testPatient); res.Err != nil {
		t.Fatal(res.Err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.reqs) != 4 {
		t.Fatalf("got %d requests, want 4", len(f.reqs))
	}
	for _, r := range f.reqs {
		for name, want := range map[string]string{
			"Authorization":  "Bearer " + testToken,
			"Epic-Client-Id": testClientID,
			"Accept":         "application/fhir+json",
		} {
			if got := r.Header.Get(name); got != want {
				t.Errorf("%s: header %s = %q, want %q", r.URI, name, got, want)
			}
		}
	}
}

func TestLabsForeignNextLinkRefused(t *testing.T) {
	other := newFakeEHR(t, func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, bundleJSON("")) })
	tests := []struct {
		name string
		next func(f *fakeEHR) string
	}{
		{"other port", func(*fakeEHR) string { return other.srv.URL + "/fhir/R4/Observation?page=2" }},
		{"other scheme", func(f *fakeEHR) string {
			return strings.Replace(f.srv.URL, "http://", "https://", 1) + "/fhir/R4/Observation?page=2"
		}},
		{"other host", func(*fakeEHR) string { return "http://attacker.invalid/fhir/R4/Observation?page=2" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeEHR(t, nil)
			f.handle = func(w http.ResponseWriter, r *http.Request) {
				writeJSON(w, 200, bundleJSON(tt.next(f), entry(obsJSON("o1", "Patient/"+testPatient), "match")))
			}
			res := f.client().Labs(context.Background(), testPatient)
			if !res.Incomplete || KindOf(res.Err) != KindMalformed {
				t.Fatalf("Incomplete=%v Err=%v, want incomplete malformed", res.Incomplete, res.Err)
			}
			if diff := cmp.Diff([]string{"o1"}, ids(res.Observations)); diff != "" {
				t.Errorf("observations mismatch (-want +got):\n%s", diff)
			}
			if n := len(f.requests()); n != 1 {
				t.Errorf("fake EHR got %d requests, want 1", n)
			}
			if got := other.requests(); len(got) != 0 {
				t.Errorf("other origin got requests %v", got)
			}
			assertSafeError(t, res.Err)
		})
	}
}

func TestCrossOriginRedirectRefused(t *testing.T) {
	other := newFakeEHR(t, func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, bundleJSON("")) })
	f := newFakeEHR(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.srv.URL+"/fhir/R4/Observation", http.StatusFound)
	})
	res := f.client().Labs(context.Background(), testPatient)
	if KindOf(res.Err) != KindUpstream || !res.Incomplete {
		t.Fatalf("Err=%v Incomplete=%v, want upstream", res.Err, res.Incomplete)
	}
	if got := other.requests(); len(got) != 0 {
		t.Errorf("other origin got requests %v", got)
	}
	assertSafeError(t, res.Err)
}

func TestLabsWrongPatient(t *testing.T) {
	tests := []struct {
		name     string
		subject  string
		wantKind ErrorKind
	}{
		{"other patient", "Patient/someoneElse", KindWrongPatient},
		{"id prefix", "Patient/" + testPatient + "9", KindWrongPatient},
		{"missing subject", "", KindWrongPatient},
		{"group", "Group/" + testPatient, KindWrongPatient},
		{"full URL same id", "https://ehr.example/fhir/R4/Patient/" + testPatient, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeEHR(t, nil)
			subj := "Patient/" + testPatient
			f.handle = func(w http.ResponseWriter, r *http.Request) {
				switch pageOf(r) {
				case "1":
					writeJSON(w, 200, bundleJSON(f.srv.URL+"/fhir/R4/Observation?page=2", entry(obsJSON("o1", subj), "match")))
				default:
					writeJSON(w, 200, bundleJSON("", entry(obsJSON("o2", subj), "match"), entry(obsJSON("bad", tt.subject), "match")))
				}
			}
			res := f.client().Labs(context.Background(), testPatient)
			if got := KindOf(res.Err); got != tt.wantKind {
				t.Fatalf("kind = %q, want %q (err %v)", got, tt.wantKind, res.Err)
			}
			if tt.wantKind == "" {
				if len(res.Observations) != 3 {
					t.Errorf("got %d observations, want 3", len(res.Observations))
				}
				return
			}
			if len(res.Observations) != 0 || len(res.Outcomes) != 0 {
				t.Errorf("wrong patient kept data: %v %v", ids(res.Observations), res.Outcomes)
			}
			if !res.Incomplete {
				t.Error("Incomplete = false")
			}
			assertSafeError(t, res.Err)
		})
	}
}

func TestLabsPagingExpiredRestart(t *testing.T) {
	subj := "Patient/" + testPatient
	tests := []struct {
		name         string
		expireTimes  int    // how many times page 2 answers 4113
		expirePage   string // which page answers 4113
		wantReqs     []string
		wantIDs      []string
		wantKind     ErrorKind
		wantComplete bool
	}{
		{
			name: "restart once", expireTimes: 1, expirePage: "2",
			wantReqs:     []string{"1", "2", "1", "2", "3"},
			wantIDs:      []string{"o1", "o2", "o3"},
			wantComplete: true,
		},
		{
			name: "expires again", expireTimes: 99, expirePage: "2",
			wantReqs: []string{"1", "2", "1", "2"},
			wantIDs:  []string{"o1"},
			wantKind: KindRequest,
		},
		{
			name: "page 1 is not restarted", expireTimes: 99, expirePage: "1",
			wantReqs: []string{"1"},
			wantKind: KindRequest,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeEHR(t, nil)
			var mu sync.Mutex
			expired := 0
			var pages []string
			f.handle = func(w http.ResponseWriter, r *http.Request) {
				p := pageOf(r)
				mu.Lock()
				pages = append(pages, p)
				expire := p == tt.expirePage && expired < tt.expireTimes
				if expire {
					expired++
				}
				mu.Unlock()
				if expire {
					writeJSON(w, 400, outcomeJSON("error", codePagingExpired))
					return
				}
				switch p {
				case "1":
					writeJSON(w, 200, bundleJSON(f.srv.URL+"/fhir/R4/Observation?page=2&s=opaque", entry(obsJSON("o1", subj), "match")))
				case "2":
					writeJSON(w, 200, bundleJSON(f.srv.URL+"/fhir/R4/Observation?page=3&s=opaque", entry(obsJSON("o2", subj), "match")))
				default:
					writeJSON(w, 200, bundleJSON("", entry(obsJSON("o3", subj), "match")))
				}
			}
			res := f.client().Labs(context.Background(), testPatient)
			if diff := cmp.Diff(tt.wantReqs, pages); diff != "" {
				t.Errorf("pages requested mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantIDs, ids(res.Observations)); diff != "" {
				t.Errorf("observations mismatch (-want +got):\n%s", diff)
			}
			if got := KindOf(res.Err); got != tt.wantKind {
				t.Errorf("kind = %q, want %q", got, tt.wantKind)
			}
			if res.Incomplete == tt.wantComplete {
				t.Errorf("Incomplete = %v", res.Incomplete)
			}
			if tt.wantComplete && res.Pages != 3 {
				t.Errorf("Pages = %d, want 3", res.Pages)
			}
			assertSafeError(t, res.Err)
		})
	}
}

func TestLabsOutcomeEntries(t *testing.T) {
	subj := "Patient/" + testPatient
	tests := []struct {
		name           string
		entries        []string
		wantCodes      []string
		wantLevels     []string
		wantIncomplete bool
		wantIDs        []string
	}{
		{
			name:       "4101 no results",
			entries:    []string{entry(outcomeJSON("information", "4101"), "outcome")},
			wantCodes:  []string{"4101"},
			wantLevels: []string{LevelInfo},
		},
		{
			name:       "4119 more data may exist",
			entries:    []string{entry(obsJSON("o1", subj), "match"), entry(outcomeJSON("warning", "4119"), "outcome")},
			wantCodes:  []string{"4119"},
			wantLevels: []string{LevelWarning},
			wantIDs:    []string{"o1"},
		},
		{
			name:           "4130 restricted",
			entries:        []string{entry(obsJSON("o1", subj), "match"), entry(outcomeJSON("warning", "4130"), "outcome")},
			wantCodes:      []string{"4130"},
			wantLevels:     []string{LevelWarning},
			wantIncomplete: true,
			wantIDs:        []string{"o1"},
		},
		{
			name:       "59204 no API",
			entries:    []string{entry(outcomeJSON("fatal", "59204"), "outcome")},
			wantCodes:  []string{"59204"},
			wantLevels: []string{LevelError},
		},
		{
			name:       "repeated outcome shown once",
			entries:    []string{entry(outcomeJSON("warning", "4119"), "outcome"), entry(outcomeJSON("warning", "4119"), "outcome")},
			wantCodes:  []string{"4119"},
			wantLevels: []string{LevelWarning},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeEHR(t, func(w http.ResponseWriter, r *http.Request) {
				writeJSON(w, 200, bundleJSON("", tt.entries...))
			})
			res := f.client().Labs(context.Background(), testPatient)
			if res.Err != nil {
				t.Fatal(res.Err)
			}
			var codes, levels []string
			for _, o := range res.Outcomes {
				codes = append(codes, o.Code)
				levels = append(levels, o.Level)
				if strings.Contains(o.Message, "Jane") || o.Message == "" {
					t.Errorf("outcome message %q", o.Message)
				}
			}
			if diff := cmp.Diff(tt.wantCodes, codes); diff != "" {
				t.Errorf("codes mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantLevels, levels); diff != "" {
				t.Errorf("levels mismatch (-want +got):\n%s", diff)
			}
			if res.Incomplete != tt.wantIncomplete {
				t.Errorf("Incomplete = %v, want %v", res.Incomplete, tt.wantIncomplete)
			}
			if diff := cmp.Diff(tt.wantIDs, ids(res.Observations)); diff != "" {
				t.Errorf("observations mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLabsEnteredInErrorDropped(t *testing.T) {
	eie := strings.Replace(obsJSON("e1", "Patient/"+testPatient), `"final"`, `"entered-in-error"`, 1)
	f := newFakeEHR(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, bundleJSON("", entry(obsJSON("o1", "Patient/"+testPatient), "match"), entry(eie, "match")))
	})
	res := f.client().Labs(context.Background(), testPatient)
	if diff := cmp.Diff([]string{"o1"}, ids(res.Observations)); diff != "" || res.Err != nil {
		t.Errorf("observations mismatch (-want +got):\n%s (err %v)", diff, res.Err)
	}
}

func TestLabsPageFailures(t *testing.T) {
	subj := "Patient/" + testPatient
	stall := func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}
	tests := []struct {
		name       string
		failPage   string
		fail       func(w http.ResponseWriter, r *http.Request)
		wantKind   ErrorKind
		wantStatus int
		wantCodes  []string // outcome codes in the result
	}{
		{"page 2 500", "2", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 500, "oops") }, KindUpstream, 500, nil},
		{"page 2 503 with outcome", "2", func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, 503, outcomeJSON("fatal", "12345"))
		}, KindUpstream, 503, []string{"12345"}},
		{"page 1 401", "1", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 401, "") }, KindUnauthorized, 401, nil},
		{"page 1 403 no API", "1", func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, 403, outcomeJSON("fatal", "59204"))
		}, KindForbidden, 403, []string{"59204"}},
		{"page 2 404", "2", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 404, "") }, KindNotFound, 404, nil},
		{"page 2 400", "2", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 400, "") }, KindRequest, 400, nil},
		{"malformed JSON", "2", func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, 200, `{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Observation","id":"Jane Doe 203713"}},]}`)
		}, KindMalformed, 200, nil},
		{"wrong field type", "2", func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, 200, `{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Observation","status":203713}}]}`)
		}, KindMalformed, 200, nil},
		{"not JSON", "1", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, "<html>login</html>") }, KindMalformed, 200, nil},
		{"wrong resourceType", "2", func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, 200, `{"resourceType":"Patient","id":"`+testPatient+`"}`)
		}, KindMalformed, 200, nil},
		{"outcome instead of bundle", "1", func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, 200, outcomeJSON("error", "4100"))
		}, KindMalformed, 200, nil},
		{"truncated JSON", "2", func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, 200, `{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Obs`)
		}, KindMalformed, 200, nil},
		{"truncated connection", "2", func(w http.ResponseWriter, r *http.Request) {
			body := bundleJSON("", entry(obsJSON("x", subj), "match"))
			w.Header().Set("Content-Length", fmt.Sprint(len(body)+100))
			w.WriteHeader(200)
			_, _ = w.Write([]byte(body))
		}, KindMalformed, 200, nil},
		{"trailing data", "2", func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, 200, bundleJSON("")+`{"resourceType":"Bundle"}`)
		}, KindMalformed, 200, nil},
		{"body too large", "2", func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, 200, bundleJSON("", entry(obsJSON("x", subj), "match"))+strings.Repeat(" ", 8<<10))
		}, KindMalformed, 200, nil},
		{"timeout before headers", "2", stall, KindTimeout, 0, nil},
		{"timeout mid-body", "2", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(200)
			_, _ = w.Write([]byte(`{"resourceType":"Bundle","entry":[`))
			w.(http.Flusher).Flush()
			stall(w, r)
		}, KindTimeout, 200, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeEHR(t, nil)
			f.handle = func(w http.ResponseWriter, r *http.Request) {
				p := pageOf(r)
				if p == tt.failPage {
					tt.fail(w, r)
					return
				}
				switch p {
				case "1":
					writeJSON(w, 200, bundleJSON(f.srv.URL+"/fhir/R4/Observation?page=2", entry(obsJSON("o1", subj), "match"), entry(obsJSON("o2", subj), "match")))
				default:
					writeJSON(w, 200, bundleJSON("", entry(obsJSON("o3", subj), "match")))
				}
			}
			c := f.client()
			// Page 1 must fit in the timeout on a loaded machine; the stalls wait for it.
			c.RequestTimeout = time.Second
			c.MaxBodyBytes = 4 << 10
			start := time.Now()
			res := c.Labs(context.Background(), testPatient)
			if time.Since(start) > 10*time.Second {
				t.Errorf("Labs took %v", time.Since(start))
			}
			if !res.Incomplete {
				t.Error("Incomplete = false")
			}
			var fe *Error
			if !errors.As(res.Err, &fe) {
				t.Fatalf("Err = %v, want *Error", res.Err)
			}
			if fe.Kind != tt.wantKind || fe.Status != tt.wantStatus {
				t.Errorf("Err kind/status = %q/%d, want %q/%d (%v)", fe.Kind, fe.Status, tt.wantKind, tt.wantStatus, fe)
			}
			var wantIDs []string
			if tt.failPage == "2" {
				wantIDs = []string{"o1", "o2"}
			}
			if diff := cmp.Diff(wantIDs, ids(res.Observations)); diff != "" {
				t.Errorf("observations mismatch (-want +got):\n%s", diff)
			}
			var codes []string
			for _, o := range res.Outcomes {
				codes = append(codes, o.Code)
			}
			if diff := cmp.Diff(tt.wantCodes, codes); diff != "" {
				t.Errorf("outcome codes mismatch (-want +got):\n%s", diff)
			}
			wantPages := 1
			if tt.failPage == "1" {
				wantPages = 0
			}
			if res.Pages != wantPages {
				t.Errorf("Pages = %d, want %d", res.Pages, wantPages)
			}
			assertSafeError(t, res.Err)
		})
	}
}

func TestLabsLoopingNextLink(t *testing.T) {
	f := newFakeEHR(t, nil)
	f.handle = func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, bundleJSON(f.srv.URL+"/fhir/R4/Observation?page=2", entry(obsJSON("o"+pageOf(r), "Patient/"+testPatient), "match")))
	}
	res := f.client().Labs(context.Background(), testPatient)
	if KindOf(res.Err) != KindMalformed || !res.Incomplete {
		t.Fatalf("Err=%v Incomplete=%v", res.Err, res.Incomplete)
	}
	if n := len(f.requests()); n != 2 {
		t.Errorf("got %d requests, want 2", n)
	}
}

func TestInvalidPatientIDSendsNothing(t *testing.T) {
	for _, id := range []string{"", "../Observation", "a/b", "a?b=c", strings.Repeat("x", 65)} {
		t.Run(id, func(t *testing.T) {
			f := newFakeEHR(t, nil)
			c := f.client()
			if _, err := c.Patient(context.Background(), id); KindOf(err) != KindRequest {
				t.Errorf("Patient err = %v, want request kind", err)
			}
			if res := c.Labs(context.Background(), id); KindOf(res.Err) != KindRequest || !res.Incomplete {
				t.Errorf("Labs err = %v, want request kind", res.Err)
			}
			if got := f.requests(); len(got) != 0 {
				t.Errorf("requests sent: %v", got)
			}
		})
	}
}

func TestPatient(t *testing.T) {
	tests := []struct {
		name     string
		status   int
		body     string
		want     *Patient
		wantKind ErrorKind
	}{
		{
			name: "ok", status: 200,
			body: strings.Replace(string(mustReadFixture(t, "patient.json")), `"pat1"`, `"`+testPatient+`"`, 1),
			want: &Patient{ID: testPatient, Name: "Lopez, Camila Maria", BirthDate: "1987-09-12", Gender: "female", MRN: "203713"},
		},
		{name: "id mismatch", status: 200, body: `{"resourceType":"Patient","id":"someoneElse","name":[{"family":"Doe"}]}`, wantKind: KindWrongPatient},
		{name: "id missing", status: 200, body: `{"resourceType":"Patient"}`, wantKind: KindWrongPatient},
		{name: "wrong resourceType", status: 200, body: `{"resourceType":"Bundle","id":"` + testPatient + `"}`, wantKind: KindMalformed},
		{name: "not found", status: 404, body: outcomeJSON("error", "4102"), wantKind: KindNotFound},
		{name: "unauthorized", status: 401, body: ``, wantKind: KindUnauthorized},
		{name: "forbidden", status: 403, body: outcomeJSON("fatal", "59204"), wantKind: KindForbidden},
		{name: "server error", status: 502, body: `bad gateway`, wantKind: KindUpstream},
		{name: "malformed", status: 200, body: `{"resourceType":"Patient","id":`, wantKind: KindMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeEHR(t, func(w http.ResponseWriter, r *http.Request) { writeJSON(w, tt.status, tt.body) })
			got, err := f.client().Patient(context.Background(), testPatient)
			want := []string{"/fhir/R4/Patient/" + testPatient}
			if tt.status == http.StatusBadGateway {
				// A 502 is retried up to DefaultMaxAttempts times in all.
				want = []string{want[0], want[0], want[0]}
			}
			if diff := cmp.Diff(want, f.requests()); diff != "" {
				t.Errorf("requests mismatch (-want +got):\n%s", diff)
			}
			if KindOf(err) != tt.wantKind {
				t.Fatalf("err = %v, want kind %q", err, tt.wantKind)
			}
			if tt.wantKind != "" {
				if got != nil {
					t.Errorf("got patient %+v with error", got)
				}
				assertSafeError(t, err)
				return
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Patient mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPatientTimeout(t *testing.T) {
	f := newFakeEHR(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	c := f.client()
	c.RequestTimeout = 100 * time.Millisecond
	start := time.Now()
	_, err := c.Patient(context.Background(), testPatient)
	if KindOf(err) != KindTimeout {
		t.Fatalf("err = %v, want timeout", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %v", d)
	}
	assertSafeError(t, err)
}

func TestLimitedReader(t *testing.T) {
	tests := []struct {
		size    int
		limit   int64
		wantErr error
	}{
		{10, 10, nil},
		{9, 10, nil},
		{11, 10, errBodyTooLarge},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.size, "/", tt.limit), func(t *testing.T) {
			body := `"` + strings.Repeat("a", tt.size-2) + `"`
			var s string
			err := decodeBody(strings.NewReader(body), tt.limit, &s)
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("err = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestErrorText(t *testing.T) {
	err := &Error{Kind: KindForbidden, Status: 403, Codes: []string{"59204"}, Err: errors.New("x")}
	if got, want := err.Error(), "fhir: forbidden (HTTP 403) codes=59204: x"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	wrapped := fmt.Errorf("view: %w", err)
	if KindOf(wrapped) != KindForbidden || KindOf(errors.New("plain")) != "" {
		t.Error("KindOf does not see through wrapping")
	}
}

// syntheticBundle is a search page of n laboratory Observations of assorted shapes.
func syntheticBundle(n int) []byte {
	subj := "Patient/" + testPatient
	var b bytes.Buffer
	b.WriteString(`{"resourceType":"Bundle","type":"searchset","total":5000,"link":[{"relation":"next","url":"https://ehr.example/fhir/R4/Observation?sessionID=abc&page=2"}],"entry":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		var value string
		switch i % 4 {
		case 0:
			value = `"valueQuantity":{"value":5.40,"unit":"mmol/L","system":"http://unitsofmeasure.org","code":"mmol/L"}`
		case 1:
			value = `"valueString":"Negative"`
		case 2:
			value = `"valueCodeableConcept":{"coding":[{"system":"http://snomed.info/sct","code":"10828004","display":"Positive"}]}`
		default:
			value = `"component":[{"code":{"text":"Systolic"},"valueQuantity":{"value":120,"unit":"mm[Hg]"}},{"code":{"text":"Diastolic"},"valueQuantity":{"value":80,"unit":"mm[Hg]"}}]`
		}
		fmt.Fprintf(&b, `{"fullUrl":"https://ehr.example/fhir/R4/Observation/o%d","resource":{"resourceType":"Observation","id":"o%d","status":"final",`+
			`"category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"laboratory","display":"Laboratory"}]}],`+
			`"code":{"text":"Potassium","coding":[{"system":"http://loinc.org","code":"2823-3","display":"Potassium [Moles/volume] in Serum or Plasma"}]},`+
			`"subject":{"reference":%q,"display":"Doe, Jane"},"effectiveDateTime":"2024-03-05T14:07:00Z","issued":"2024-03-05T15:07:00Z",%s,`+
			`"referenceRange":[{"low":{"value":3.5,"unit":"mmol/L"},"high":{"value":5.1,"unit":"mmol/L"},"text":"3.5 - 5.1 mmol/L"}],`+
			`"interpretation":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation","code":"H"}]}]},`+
			`"search":{"mode":"match"}}`, i, i, subj, value)
	}
	b.WriteString(`]}`)
	return b.Bytes()
}

func TestSyntheticBundleDecodes(t *testing.T) {
	p, err := decodeBundle(syntheticBundle(100), testPatient)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.observations) != 100 || p.next == "" {
		t.Errorf("got %d observations, next %q", len(p.observations), p.next)
	}
}

func BenchmarkDecodeBundle(b *testing.B) {
	data := syntheticBundle(100)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		body, err := readBody(bytes.NewReader(data), int64(len(data)), DefaultMaxBodyBytes)
		if err != nil {
			b.Fatal(err)
		}
		p, err := decodeBundle(body, testPatient)
		if err != nil || len(p.observations) != 100 {
			b.Fatal(err)
		}
	}
}

func TestUnreachableEHR(t *testing.T) {
	f := newFakeEHR(t, nil)
	c := f.client()
	f.srv.Close()
	res := c.Labs(context.Background(), testPatient)
	if KindOf(res.Err) != KindUpstream || !res.Incomplete {
		t.Fatalf("Err=%v Incomplete=%v, want upstream", res.Err, res.Incomplete)
	}
	assertSafeError(t, res.Err)
	_, err := c.Patient(context.Background(), testPatient)
	if KindOf(err) != KindUpstream {
		t.Fatalf("Patient err = %v, want upstream", err)
	}
	assertSafeError(t, err)
}

// TestOnPage: the hook sees every page as it arrives, with the running count and Bundle.total.
func TestOnPage(t *testing.T) {
	var srvURL string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		page := r.URL.Query().Get("page")
		next := ""
		if page == "" {
			next = `,"link":[{"relation":"next","url":"` + srvURL + `/Observation?page=2"}]`
		}
		w.Write([]byte(`{"resourceType":"Bundle","total":2` + next + `,"entry":[{"resource":{"resourceType":"Observation","id":"o` + page + `","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/p1"}},"search":{"mode":"match"}}]}`))
	}))
	defer srv.Close()
	srvURL = srv.URL
	var got []Progress
	c := &Client{HTTP: srv.Client(), BaseURL: srv.URL, Token: "t", OnPage: func(p Progress) { got = append(got, p) }}
	res := c.Labs(context.Background(), "p1")
	if res.Err != nil || len(got) != 2 {
		t.Fatalf("err %v, %d progress reports", res.Err, len(got))
	}
	if got[0].Fetched != 1 || got[1].Fetched != 2 || got[1].Total != 2 || len(got[1].Page) != 1 || got[0].Restarted {
		t.Errorf("progress = %+v", got)
	}
}

// TestDecodeBundleSlowPath: a resource of another type whose fields have
// other shapes is ignored, as is an entry without a resource, while the
// Observations around it are kept; a wrong shape in an Observation still fails.
func TestDecodeBundleSlowPath(t *testing.T) {
	subj := "Patient/" + testPatient
	tests := []struct {
		name     string
		body     string
		wantIDs  []string
		wantKind ErrorKind
	}{
		{"included resource with other shapes", bundleJSON("",
			entry(obsJSON("o1", subj), "match"),
			entry(`{"resourceType":"Medication","code":"not-a-concept","status":7,"issue":"x"}`, "include"),
			`{"search":{"mode":"match"}}`,
			entry(obsJSON("o2", subj), "match")), []string{"o1", "o2"}, ""},
		{"outcome after a stray resource", bundleJSON("",
			entry(`{"resourceType":"Device","subject":[1,2]}`, "include"),
			entry(outcomeJSON("warning", "4119"), "outcome"),
			entry(obsJSON("o1", subj), "match")), []string{"o1"}, ""},
		{"observation with a wrong shape", bundleJSON("",
			entry(`{"resourceType":"Device","subject":[1,2]}`, "include"),
			entry(`{"resourceType":"Observation","id":"o1","subject":{"reference":"`+subj+`"},"code":"x"}`, "match")), nil, KindMalformed},
		{"wrong subject on the slow path", bundleJSON("",
			entry(`{"resourceType":"Device","subject":[1,2]}`, "include"),
			entry(obsJSON("o1", "Patient/other"), "match")), nil, KindWrongPatient},
		{"truncated", `{"resourceType":"Bundle","entry":[`, nil, KindMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := decodeBundle([]byte(tt.body), testPatient)
			if KindOf(err) != tt.wantKind {
				t.Fatalf("err = %v, want kind %q", err, tt.wantKind)
			}
			if err != nil {
				assertSafeError(t, err)
				return
			}
			if diff := cmp.Diff(tt.wantIDs, ids(p.observations)); diff != "" {
				t.Errorf("observations mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestNextLinksThatNeverEnd: a relative next link that grows on every page
// (each resolves to a new URL) stops at MaxPages with an incomplete result.
func TestNextLinksThatNeverEnd(t *testing.T) {
	var requests atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		w.Header().Set("Content-Type", "application/fhir+json")
		io.WriteString(w, `{"resourceType":"Bundle","type":"searchset","link":[{"relation":"next","url":"more/x"}]}`)
	}))
	defer srv.Close()
	c := &Client{HTTP: srv.Client(), BaseURL: srv.URL, Token: "t", MaxPages: 5, MaxAttempts: 1}
	res := c.Labs(context.Background(), "p1")
	if res.Err == nil || !res.Incomplete {
		t.Fatalf("err %v, incomplete %v; want an incomplete result with an error", res.Err, res.Incomplete)
	}
	if n := requests.Load(); n > 6 {
		t.Errorf("%d requests, want at most MaxPages and one capability read", n)
	}
}
