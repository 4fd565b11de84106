package fhir_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"smartlabs/server/bench/simclient"
	"smartlabs/server/ehrsim"
	"smartlabs/server/fhir"
)

// simEnv is the project's EHR simulator on loopback, the peer of these tests.
type simEnv struct {
	sim *ehrsim.Sim
	srv *httptest.Server
}

const simRedirect = "http://127.0.0.1/fhir-test-callback"

func newSim(t testing.TB, sw ehrsim.Switches) *simEnv {
	t.Helper()
	sim, err := ehrsim.New(ehrsim.Options{
		BaseURL: "http://127.0.0.1",
		Clients: []ehrsim.Client{{ID: simclient.FixtureClientID, Public: true, RedirectURIs: []string{simRedirect}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	sim.SetBaseURL(srv.URL)
	// Switches that slow or throttle requests are set after the launches.
	sim.SetSwitches(ehrsim.Switches{SearchParams: sw.SearchParams})
	return &simEnv{sim: sim, srv: srv}
}

// launch does an EHR launch for the patient whose family name is family and
// returns the access token and the patient id.
func (e *simEnv) launch(t testing.TB, family string) (token, patient string) {
	t.Helper()
	var p ehrsim.PatientInfo
	for _, info := range e.sim.Patients() {
		if info.Family == family {
			p = info
		}
	}
	if p.ID == "" {
		t.Fatalf("no patient %s", family)
	}
	lt, err := e.sim.NewLaunch(p.ID, simclient.FixtureClientID)
	if err != nil {
		t.Fatal(err)
	}
	c := &simclient.Client{ISS: e.sim.ISS(), AuthorizeURL: e.sim.AuthorizeURL(), TokenURL: e.sim.TokenURL(),
		ClientID: simclient.FixtureClientID, RedirectURI: simRedirect}
	tok, err := c.Launch(context.Background(), lt)
	if err != nil {
		t.Fatal(err)
	}
	return tok.AccessToken, p.ID
}

// patient returns the simulator's description of the patient named family.
func (e *simEnv) patient(family string) ehrsim.PatientInfo {
	for _, info := range e.sim.Patients() {
		if info.Family == family {
			return info
		}
	}
	return ehrsim.PatientInfo{}
}

// client is an app client of the simulator with tok.
func (e *simEnv) client(tok string, pageSize, parallel int) *fhir.Client {
	return &fhir.Client{
		HTTP: e.srv.Client(), BaseURL: e.sim.ISS(), Token: tok, ClientID: simclient.FixtureClientID,
		PageSize: pageSize, MaxParallel: parallel, RequestTimeout: 30 * time.Second,
	}
}

// searches are the simulator's Observation requests, as logged.
func (e *simEnv) searches() []ehrsim.Request {
	var out []ehrsim.Request
	for _, r := range e.sim.Requests() {
		if strings.HasSuffix(r.Path, "/Observation") {
			out = append(out, r)
		}
	}
	return out
}

// uniqueIDs returns the ids of obs and fails on a repeated one.
func uniqueIDs(t *testing.T, obs []fhir.Observation) map[string]bool {
	t.Helper()
	seen := make(map[string]bool, len(obs))
	for _, o := range obs {
		if seen[o.ID] {
			t.Errorf("result %s is there twice", o.ID)
		}
		seen[o.ID] = true
	}
	return seen
}

// shown is how many results of p a view shows: entered-in-error ones are left out.
func shown(p ehrsim.PatientInfo) int { return p.ResultCount - p.EnteredInError }

// viewOf replays a Labs call's reports as the view does (a First or a
// Restarted report voids what came before) and returns the ids shown.
type viewOf struct {
	mu       sync.Mutex
	ids      []string
	restarts int
	windows  int
}

func (v *viewOf) onPage(p fhir.Progress) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if p.First || p.Restarted {
		v.ids = nil
	}
	if p.Restarted {
		v.restarts++
	}
	if p.Window != nil {
		v.windows++
	}
	for _, o := range p.Page {
		v.ids = append(v.ids, o.ID)
	}
}

// TestSimSlicedMatchesSequential: against the simulator, the sliced search
// of the 5,000-result patient brings exactly the results of the search page
// after page, each once, with at most one request per window more.
func TestSimSlicedMatchesSequential(t *testing.T) {
	for _, tt := range []struct {
		mode  ehrsim.SearchParams
		param string
	}{
		{ehrsim.ParamsApplied, fhir.ParamLastUpdated},
		{ehrsim.ParamsDateOnly, fhir.ParamDate},
	} {
		t.Run(tt.param, func(t *testing.T) {
			e := newSim(t, ehrsim.Switches{SearchParams: tt.mode})
			tok, pid := e.launch(t, "Large")
			seq := e.client(tok, 100, 1).Labs(context.Background(), pid)
			if seq.Err != nil || seq.SlicedBy != "" {
				t.Fatalf("sequential: %v, sliced by %q", seq.Err, seq.SlicedBy)
			}
			sequential := len(e.searches())
			e.sim.ResetRequests()

			var view viewOf
			c := e.client(tok, 100, 4)
			c.OnPage = view.onPage
			res := c.Labs(context.Background(), pid)
			if res.Err != nil || res.Incomplete || res.SlicedBy != tt.param || res.FellBack {
				t.Fatalf("sliced: Err %v, Incomplete %v, SlicedBy %q, FellBack %v", res.Err, res.Incomplete, res.SlicedBy, res.FellBack)
			}
			want, got := uniqueIDs(t, seq.Observations), uniqueIDs(t, res.Observations)
			if len(got) != len(want) || len(want) != shown(e.patient("Large")) {
				t.Errorf("sliced %d results, sequential %d, the patient has %d", len(got), len(want), shown(e.patient("Large")))
			}
			for id := range want {
				if !got[id] {
					t.Errorf("sliced search lost %s", id)
				}
			}
			if len(view.ids) != len(want) || view.windows == 0 {
				t.Errorf("the reports show %d results (from %d window pages), want %d", len(view.ids), view.windows, len(want))
			}
			sliced := len(e.searches())
			if limit := sequential + res.Windows + 1; sliced > limit {
				t.Errorf("%d search requests for %d windows, want at most %d (page after page: %d)", sliced, res.Windows, limit, sequential)
			}
			t.Logf("page after page: %d requests; sliced: %d requests, %d windows", sequential, sliced, res.Windows)
		})
	}
}

// TestSimUndatedResults: the pending orders without a date are never lost:
// sliced on _lastUpdated (they have one), on date (the date:missing window
// fetches them), or page after page when date:missing is not offered.
func TestSimUndatedResults(t *testing.T) {
	for _, tt := range []struct {
		name  string
		mode  ehrsim.SearchParams
		param string
	}{
		{"_lastUpdated", ehrsim.ParamsApplied, fhir.ParamLastUpdated},
		{"date with missing", ehrsim.ParamsDateOnly, fhir.ParamDate},
		{"date without missing", ehrsim.ParamsDateWithoutMissing, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newSim(t, ehrsim.Switches{SearchParams: tt.mode})
			tok, pid := e.launch(t, "Pending")
			res := e.client(tok, 50, 4).Labs(context.Background(), pid)
			if res.Err != nil || res.Incomplete || res.SlicedBy != tt.param {
				t.Fatalf("Err %v, Incomplete %v, SlicedBy %q", res.Err, res.Incomplete, res.SlicedBy)
			}
			if got, want := len(uniqueIDs(t, res.Observations)), shown(e.patient("Pending")); got != want {
				t.Errorf("%d results, want %d", got, want)
			}
			undated := 0
			for _, o := range res.Observations {
				if o.Effective.IsZero() {
					undated++
					if o.Status != "registered" && o.Status != "preliminary" {
						t.Errorf("undated %s has status %s", o.ID, o.Status)
					}
				}
			}
			if undated != 6 {
				t.Errorf("%d undated results, want 6", undated)
			}
			if tt.param == fhir.ParamDate {
				missing := 0
				for _, r := range e.searches() {
					if strings.Contains(r.Query, "date%3Amissing=true") {
						missing++
					}
				}
				if missing != 1 {
					t.Errorf("%d date:missing=true searches, want 1", missing)
				}
			}
		})
	}
}

// TestSimIgnoredParameterFallsBack: a simulator that lists the slicing
// parameters but ignores them makes the client fall back to page after page,
// reported as a restart: the view ends with every result once. One that does
// not list them is searched page after page from the start.
func TestSimIgnoredParameterFallsBack(t *testing.T) {
	t.Run("listed but ignored", func(t *testing.T) {
		e := newSim(t, ehrsim.Switches{SearchParams: ehrsim.ParamsIgnored})
		tok, pid := e.launch(t, "Lin")
		var view viewOf
		c := e.client(tok, 50, 4)
		c.OnPage = view.onPage
		res := c.Labs(context.Background(), pid)
		if res.Err != nil || res.Incomplete || !res.FellBack {
			t.Fatalf("Err %v, Incomplete %v, FellBack %v", res.Err, res.Incomplete, res.FellBack)
		}
		want := shown(e.patient("Lin"))
		if got := len(uniqueIDs(t, res.Observations)); got != want {
			t.Errorf("%d results, want %d", got, want)
		}
		seen := map[string]bool{}
		for _, id := range view.ids {
			if seen[id] {
				t.Errorf("the view shows %s twice", id)
			}
			seen[id] = true
		}
		if len(seen) != want || view.restarts != 1 {
			t.Errorf("the view shows %d results after %d restarts, want %d after 1", len(seen), view.restarts, want)
		}
		sequential := (e.patient("Lin").ResultCount + 49) / 50
		if got, limit := len(e.searches()), sequential+1+2*res.Windows; got > limit {
			t.Errorf("%d searches, want at most %d", got, limit)
		}
	})
	t.Run("not listed", func(t *testing.T) {
		e := newSim(t, ehrsim.Switches{SearchParams: ehrsim.ParamsUnlisted})
		tok, pid := e.launch(t, "Lin")
		res := e.client(tok, 50, 4).Labs(context.Background(), pid)
		if res.Err != nil || res.SlicedBy != "" || res.FellBack {
			t.Fatalf("Err %v, SlicedBy %q, FellBack %v", res.Err, res.SlicedBy, res.FellBack)
		}
		if got, want := len(e.searches()), (e.patient("Lin").ResultCount+49)/50; got != want {
			t.Errorf("%d searches, want %d (page after page)", got, want)
		}
	})
}

// TestSimThrottleBackOff: a simulator that answers 429 beyond two requests in
// flight per token: the launch lowers its bound and the search completes,
// after few 429s. Without the back-off, every round of four would draw two
// 429s and windows would run out of tries.
func TestSimThrottleBackOff(t *testing.T) {
	e := newSim(t, ehrsim.Switches{})
	tok, pid := e.launch(t, "Large")
	e.sim.SetSwitches(ehrsim.Switches{MaxInFlightPerToken: 2, Latency: 5 * time.Millisecond})
	c := e.client(tok, 100, 4)
	res := c.Labs(context.Background(), pid)
	if res.Err != nil || res.Incomplete || res.SlicedBy == "" {
		t.Fatalf("Err %v, Incomplete %v, SlicedBy %q", res.Err, res.Incomplete, res.SlicedBy)
	}
	if got, want := len(uniqueIDs(t, res.Observations)), shown(e.patient("Large")); got != want {
		t.Errorf("%d results, want %d", got, want)
	}
	throttled, ok := 0, 0
	for _, r := range e.searches() {
		switch r.Status {
		case http.StatusTooManyRequests:
			throttled++
		case http.StatusOK:
			ok++
		}
	}
	if throttled == 0 {
		t.Fatal("the simulator never throttled: the test does not test back-off")
	}
	if throttled*8 > ok {
		t.Errorf("%d requests throttled for %d answered, want at most one in eight", throttled, ok)
	}
	t.Logf("%d answered, %d throttled", ok, throttled)
}

// TestSimIssuerCapAcrossLaunches: three launches at once, each allowed three
// requests in flight, share a per-issuer bound of five: the simulator never
// sees more than five requests at once, nor more than three of one launch.
func TestSimIssuerCapAcrossLaunches(t *testing.T) {
	e := newSim(t, ehrsim.Switches{})
	type launch struct{ tok, pid, family string }
	var ls []launch
	for _, family := range []string{"Large", "Lin", "Okafor"} {
		tok, pid := e.launch(t, family)
		ls = append(ls, launch{tok, pid, family})
	}
	e.sim.SetSwitches(ehrsim.Switches{Latency: 10 * time.Millisecond})
	e.sim.ResetRequests()
	issuer := fhir.NewGate(5)
	results := make([]*fhir.LabsResult, len(ls))
	var wg sync.WaitGroup
	for i, l := range ls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := e.client(l.tok, 100, 3)
			c.Gate = issuer
			if _, err := c.Patient(context.Background(), l.pid); err != nil {
				t.Errorf("%s: Patient: %v", l.family, err)
			}
			results[i] = c.Labs(context.Background(), l.pid)
		}()
	}
	wg.Wait()
	for i, l := range ls {
		if res := results[i]; res.Err != nil || len(res.Observations) != shown(e.patient(l.family)) {
			t.Errorf("%s: Err %v, %d results", l.family, results[i].Err, len(results[i].Observations))
		}
	}
	most, mostOfOne := 0, 0
	for _, r := range e.sim.Requests() {
		most, mostOfOne = max(most, r.InFlight), max(mostOfOne, r.TokenInFlight)
	}
	if most > 5 || mostOfOne > 3 {
		t.Errorf("at most %d requests in flight, %d of one launch; want at most 5 and 3", most, mostOfOne)
	}
	if most < 2 {
		t.Errorf("at most %d request in flight: the launches did not overlap", most)
	}
}
