package ehrsim

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// searchAll runs a laboratory search with the extra parameters and follows
// every next link; it returns the observations in the order served.
func (f *fixture) searchAll(t *testing.T, tok, patient string, extra url.Values) []observation {
	t.Helper()
	v := url.Values{"patient": {patient}, "category": {"laboratory"}, "_count": {"100"}}
	for k, vs := range extra {
		v[k] = vs
	}
	var out []observation
	for next := "/fhir/R4/Observation?" + v.Encode(); next != ""; {
		resp, body := f.get(t, next, tok)
		b := mustBundle(t, resp, body)
		for _, e := range b.Entry {
			if e.Search.Mode != "match" {
				continue
			}
			var o observation
			if err := json.Unmarshal(e.Resource, &o); err != nil {
				t.Fatal(err)
			}
			out = append(out, o)
		}
		next = b.next()
	}
	return out
}

// idsOf lists the ids of obs.
func idsOf(obs []observation) []string {
	out := make([]string, len(obs))
	for i, o := range obs {
		out[i] = o.ID
	}
	return out
}

// patientNamed returns the spec of the patient with that family name.
func patientNamed(t *testing.T, family string) patientSpec {
	t.Helper()
	for _, p := range patientSpecs {
		if p.family == family {
			return p
		}
	}
	t.Fatalf("no patient %s", family)
	return patientSpec{}
}

// TestDatedSearchesHoldNoCopy: a dated search names the results it selects
// instead of copying them. Each search is kept for searchLifetime, and a
// sliced search of one launch makes one per window: a copy each would hold
// the patient's whole record again per launch, which the app's load runs,
// measured in the same process, would count as the app's memory.
func TestDatedSearchesHoldNoCopy(t *testing.T) {
	f := mustFixture(t, Switches{})
	p := patientNamed(t, "Large")
	tok := f.mustToken(t, p.id)
	// Every dated result: the copy this guards against is the largest.
	path := "/fhir/R4/Observation?" + url.Values{"patient": {p.id}, "category": {"laboratory"}, "_count": {"10"}, "date": {"ge1900-01-01"}}.Encode()
	search := func() {
		resp, body := f.get(t, path, tok)
		if b := mustBundle(t, resp, body); b.Total < p.results/2 {
			t.Fatalf("the dated search found %d results of %d", b.Total, p.results)
		}
	}
	search() // the record and its times, computed once for every search
	const searches = 20
	before := liveHeap()
	for range searches {
		search()
	}
	per := (liveHeap() - before) / searches
	// A copy is over 2 MB a search; the places of 5,000 results, 20 KB.
	if per > 256<<10 {
		t.Errorf("each dated search of %d results keeps %d KB, want at most 256 KB", p.results, per>>10)
	}
}

// liveHeap is the heap in use after garbage collection.
func liveHeap() int64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// TestSearchWindowsPartitionResults: windows that share boundaries (ge/lt)
// on _lastUpdated or on date, with open ends, return every result exactly
// once, a result exactly on a boundary in the later window only; date
// windows leave out the undated results, which date:missing=true returns.
func TestSearchWindowsPartitionResults(t *testing.T) {
	f := mustFixture(t, Switches{})
	for _, family := range []string{"Lin", "Pending"} {
		p := patientNamed(t, family)
		tok := f.mustToken(t, p.id)
		all := f.searchAll(t, tok, p.id, nil)
		if len(all) != p.results {
			t.Fatalf("%s: %d results, want %d", family, len(all), p.results)
		}
		// Boundaries exactly on results' times, newest first.
		at := []observation{all[len(all)/6], all[len(all)/3], all[len(all)/2]}
		for _, tt := range []struct {
			param      string
			boundaries []string
			missing    bool
		}{
			{"_lastUpdated", []string{at[0].Meta.LastUpdated, at[1].Meta.LastUpdated, at[2].Meta.LastUpdated}, false},
			{"date", []string{at[0].EffectiveDateTime, at[1].EffectiveDateTime, at[2].EffectiveDateTime}, true},
		} {
			t.Run(family+"/"+tt.param, func(t *testing.T) {
				for _, b := range tt.boundaries {
					if b == "" {
						t.Fatal("a boundary result has no time")
					}
				}
				seen := map[string]int{}
				windows := len(tt.boundaries) + 1
				for i := range windows {
					v := url.Values{}
					if i > 0 {
						v.Add(tt.param, "lt"+tt.boundaries[i-1])
					}
					if i < len(tt.boundaries) {
						v.Add(tt.param, "ge"+tt.boundaries[i])
					}
					for _, o := range f.searchAll(t, tok, p.id, v) {
						seen[o.ID]++
						if tt.param == "date" && o.EffectiveDateTime == "" {
							t.Errorf("date window %d returned the undated %s", i, o.ID)
						}
					}
				}
				if tt.missing {
					undated := f.searchAll(t, tok, p.id, url.Values{"date:missing": {"true"}})
					for _, o := range undated {
						if o.EffectiveDateTime != "" {
							t.Errorf("date:missing=true returned %s, dated %s", o.ID, o.EffectiveDateTime)
						}
						seen[o.ID]++
					}
					if want := p.pending; len(undated) != want {
						t.Errorf("date:missing=true returned %d, want %d", len(undated), want)
					}
				}
				for _, o := range all {
					if seen[o.ID] != 1 {
						t.Errorf("%s (updated %s, effective %q) returned %d times", o.ID, o.Meta.LastUpdated, o.EffectiveDateTime, seen[o.ID])
					}
				}
				if len(seen) != len(all) {
					t.Errorf("windows returned %d distinct results, want %d", len(seen), len(all))
				}
				onBoundary := all[len(all)/3]
				later := f.searchAll(t, tok, p.id, url.Values{tt.param: {"ge" + tt.boundaries[1]}})
				if !contains(idsOf(later), onBoundary.ID) {
					t.Errorf("the result on the boundary is not in the later window")
				}
			})
		}
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// TestSearchDatePrecision: a date-only effective stands for its whole day,
// so windows split inside it both return it, as FHIR's date search does.
func TestSearchDatePrecision(t *testing.T) {
	f := mustFixture(t, Switches{})
	p := patientNamed(t, "Edge")
	tok := f.mustToken(t, p.id)
	const boundary = "9999-12-31T12:00:00Z"
	later := idsOf(f.searchAll(t, tok, p.id, url.Values{"date": {"ge" + boundary}}))
	earlier := f.searchAll(t, tok, p.id, url.Values{"date": {"lt" + boundary}})
	var dateOnly string
	for _, o := range earlier {
		if o.EffectiveDateTime == "9999-12-31" {
			dateOnly = o.ID
		}
	}
	if dateOnly == "" || !contains(later, dateOnly) {
		t.Errorf("the result of 9999-12-31 is not in both windows (later %v)", later)
	}
	if len(later) != 2 {
		t.Errorf("later window holds %d results, want the two of 9999-12-31", len(later))
	}
}

// TestSearchParamsModes: each SearchParams mode lists and applies what it says.
func TestSearchParamsModes(t *testing.T) {
	p := patientNamed(t, "Pending")
	window := url.Values{"_lastUpdated": {"ge2000-01-01T00:00:00Z", "lt2000-01-02T00:00:00Z"}}
	dateWindow := url.Values{"date": {"ge2000-01-01T00:00:00Z", "lt2000-01-02T00:00:00Z"}}
	missing := url.Values{"date:missing": {"true"}}
	tests := []struct {
		name                               string
		mode                               SearchParams
		wantListed                         []string
		wantMissingListed                  bool
		wantUpdated, wantDate, wantMissing int // results of each search
	}{
		{"applied", ParamsApplied, []string{"_lastUpdated", "date"}, true, 0, 0, pendingResults},
		{"date only", ParamsDateOnly, []string{"date"}, true, p.results, 0, pendingResults},
		{"date without missing", ParamsDateWithoutMissing, []string{"date"}, false, p.results, 0, p.results},
		{"listed but ignored", ParamsIgnored, []string{"_lastUpdated", "date"}, true, p.results, p.results, p.results},
		{"unlisted", ParamsUnlisted, nil, false, p.results, p.results, p.results},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := mustFixture(t, Switches{SearchParams: tt.mode})
			listed, missingListed := listedParams(t, f)
			if diff := cmp.Diff(tt.wantListed, listed); diff != "" || missingListed != tt.wantMissingListed {
				t.Errorf("listed (-want +got):\n%s; missing modifier listed %v", diff, missingListed)
			}
			tok := f.mustToken(t, p.id)
			got := []int{
				len(f.searchAll(t, tok, p.id, window)),
				len(f.searchAll(t, tok, p.id, dateWindow)),
				len(f.searchAll(t, tok, p.id, missing)),
			}
			if want := []int{tt.wantUpdated, tt.wantDate, tt.wantMissing}; !cmp.Equal(got, want) {
				t.Errorf("results of _lastUpdated, date, date:missing searches = %v, want %v", got, want)
			}
		})
	}
}

// listedParams reads the Observation search parameters beyond patient,
// category and _count from the CapabilityStatement, and whether date's
// definition is a contained SearchParameter with the missing modifier.
func listedParams(t *testing.T, f *fixture) (names []string, missing bool) {
	t.Helper()
	resp, body := f.get(t, "/fhir/R4/metadata", "", "Accept", "application/fhir+json")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("metadata: %d", resp.StatusCode)
	}
	var cs struct {
		Contained []struct {
			ResourceType string   `json:"resourceType"`
			ID           string   `json:"id"`
			Code         string   `json:"code"`
			Modifier     []string `json:"modifier"`
		} `json:"contained"`
		Rest []struct {
			Resource []struct {
				Type        string `json:"type"`
				SearchParam []struct {
					Name       string `json:"name"`
					Definition string `json:"definition"`
				} `json:"searchParam"`
			} `json:"resource"`
		} `json:"rest"`
	}
	if err := json.Unmarshal(body, &cs); err != nil {
		t.Fatal(err)
	}
	for _, r := range cs.Rest[0].Resource {
		if r.Type != "Observation" {
			continue
		}
		for _, sp := range r.SearchParam {
			switch sp.Name {
			case "patient", "category", "_count":
				continue
			}
			names = append(names, sp.Name)
			for _, c := range cs.Contained {
				if sp.Definition == "#"+c.ID && c.ResourceType == "SearchParameter" && contains(c.Modifier, "missing") {
					missing = true
				}
			}
		}
	}
	return names, missing
}

// TestSearchParamErrors: a prefix or date the simulator does not know is a 400.
func TestSearchParamErrors(t *testing.T) {
	f := mustFixture(t, Switches{})
	p := patientSpecs[0].id
	tok := f.mustToken(t, p)
	for _, q := range []string{"_lastUpdated=sa2024-01-01", "date=ge2024-13-01", "date:missing=maybe", "_lastUpdated=geyesterday"} {
		resp, body := f.get(t, searchPath(p, 10)+"&"+q, tok)
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400", q, resp.StatusCode)
			continue
		}
		mustOutcome(t, body)
	}
}

// TestEveryResultHasLastUpdated: every result is sent with meta.lastUpdated,
// the undated pending orders too.
func TestEveryResultHasLastUpdated(t *testing.T) {
	f := mustFixture(t, Switches{})
	p := patientNamed(t, "Pending")
	obs := f.searchAll(t, f.mustToken(t, p.id), p.id, nil)
	undated := 0
	for _, o := range obs {
		if o.Meta == nil || o.Meta.LastUpdated == "" {
			t.Fatalf("%s has no meta.lastUpdated", o.ID)
		}
		if _, err := time.Parse(time.RFC3339, o.Meta.LastUpdated); err != nil {
			t.Errorf("%s: meta.lastUpdated %q", o.ID, o.Meta.LastUpdated)
		}
		if o.EffectiveDateTime == "" {
			undated++
			if o.Status != "registered" && o.Status != "preliminary" {
				t.Errorf("undated %s has status %s", o.ID, o.Status)
			}
		}
	}
	if undated != pendingResults {
		t.Errorf("%d undated results, want %d", undated, pendingResults)
	}
}

// holdRequest sends a Patient read with tok that stays in flight (the
// simulator's latency holds it) until the returned cancel is called.
func holdRequest(t *testing.T, f *fixture, tok, patient string) (cancel func()) {
	t.Helper()
	ctx, cancelReq := context.WithCancel(context.Background())
	done := make(chan struct{})
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, f.srv.URL+"/fhir/R4/Patient/"+patient, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	go func() {
		defer close(done)
		if resp, err := f.http.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		f.sim.mu.Lock()
		n := f.sim.flight.byToken[tok]
		f.sim.mu.Unlock()
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the held request never arrived")
		}
		time.Sleep(time.Millisecond)
	}
	return func() {
		cancelReq()
		<-done
	}
}

// TestSwitchMaxInFlightPerToken: beyond the cap, a request with the same
// token is answered 429 with Retry-After at once; another token is not
// throttled; the log tells how many were in flight.
func TestSwitchMaxInFlightPerToken(t *testing.T) {
	f := mustFixture(t, Switches{})
	p := patientSpecs[0].id
	tok, other := f.mustToken(t, p), f.mustToken(t, p)
	f.sim.SetSwitches(Switches{Latency: time.Minute, MaxInFlightPerToken: 1, RetryAfter: 2 * time.Second})
	release := holdRequest(t, f, tok, p)
	resp, body := f.get(t, searchPath(p, 10), tok)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "2" {
		t.Errorf("second request: status %d, Retry-After %q; want 429, 2", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	mustOutcome(t, body)
	f.sim.SetSwitches(Switches{MaxInFlightPerToken: 1})
	if resp, _ := f.get(t, searchPath(p, 10), other); resp.StatusCode != http.StatusOK {
		t.Errorf("another token: status %d", resp.StatusCode)
	}
	release()
	var got [][2]int
	for _, r := range f.sim.Requests() {
		if strings.HasPrefix(r.Path, "/fhir/R4/Observation") {
			got = append(got, [2]int{r.InFlight, r.TokenInFlight})
		}
	}
	if want := [][2]int{{2, 2}, {2, 1}}; !cmp.Equal(got, want) {
		t.Errorf("(in flight, with its token) of the searches = %v, want %v", got, want)
	}
}

// TestSwitchLatencyPerInFlight: each other request in flight adds its latency.
func TestSwitchLatencyPerInFlight(t *testing.T) {
	f := mustFixture(t, Switches{LatencyPerInFlight: 100 * time.Millisecond})
	f.sim.mu.Lock()
	f.sim.flight.all = 4 // this request and three others
	f.sim.mu.Unlock()
	start := time.Now()
	f.sim.latency(context.Background())
	if took := time.Since(start); took < 300*time.Millisecond {
		t.Errorf("latency with 3 others in flight took %v, want at least 300ms", took)
	}
}

// TestSwitchLatencyPerResult: a page costs time for each result it holds.
func TestSwitchLatencyPerResult(t *testing.T) {
	f := mustFixture(t, Switches{})
	p := patientSpecs[0].id
	tok := f.mustToken(t, p)
	f.sim.SetSwitches(Switches{LatencyPerResult: 5 * time.Millisecond})
	start := time.Now()
	resp, body := f.get(t, searchPath(p, 60), tok)
	if n := len(mustBundle(t, resp, body).Entry); n < 60 {
		t.Fatalf("%d entries", n)
	}
	if took := time.Since(start); took < 300*time.Millisecond {
		t.Errorf("a page of 60 results took %v, want at least 300ms", took)
	}
}
