package ehrsim

import (
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

// epicComponentSystem is the shape of an Epic organisation's component code system.
var epicComponentSystem = regexp.MustCompile(`^urn:oid:1\.2\.840\.114350\.1\.13\.[0-9]+\.[0-9]+\.7\.2\.768282$`)

// TestEpicPatient: the patient with Epic's shapes sends what a production
// Epic system sends: no interpretation on most results (out-of-range ones
// included), panels through reports and orders only, notes, component
// codes (one test without LOINC), comparators, text-only ranges, ranges by
// sex and age, specimen and performer displays, issued apart from collected.
func TestEpicPatient(t *testing.T) {
	d := newDataset()
	p := d.patient(epicPatient.id)
	if p == nil || !p.epic {
		t.Fatal("no patient with Epic's shapes")
	}
	obs := d.observations(p.id, dataClock)
	if len(obs) != p.results || p.info().ResultCount != len(obs) {
		t.Fatalf("%d observations, spec says %d", len(obs), p.results)
	}
	byID := map[string]observation{}
	shapes := map[string]int{}
	var prev time.Time
	for _, o := range obs {
		byID[o.ID] = o
		if o.Subject.Reference != "Patient/"+p.id || o.Category[0].Coding[0].Code != "laboratory" {
			t.Errorf("%s: subject %q category %v", o.ID, o.Subject.Reference, o.Category)
		}
		at, err := time.Parse(time.RFC3339, o.EffectiveDateTime)
		issued, err2 := time.Parse(time.RFC3339, o.Issued)
		if err != nil || err2 != nil || !issued.After(at) || !issued.Before(dataClock) {
			t.Errorf("%s: collected %q, issued %q", o.ID, o.EffectiveDateTime, o.Issued)
		}
		if !prev.IsZero() && at.After(prev) {
			t.Errorf("%s comes after an older result", o.ID)
		}
		prev = at
		if len(o.Interpretation) == 0 {
			shapes["no interpretation"]++
		}
		if len(o.BasedOn) != 1 || !strings.HasPrefix(o.BasedOn[0].Reference, "ServiceRequest/") || o.BasedOn[0].Display == "" {
			t.Errorf("%s: basedOn %+v", o.ID, o.BasedOn)
		}
		if o.Specimen == nil || o.Specimen.Display == "" || len(o.Performer) != 1 || o.Performer[0].Display == "" {
			t.Errorf("%s: specimen %+v performer %+v", o.ID, o.Specimen, o.Performer)
		}
		if !epicComponentSystem.MatchString(o.Code.Coding[0].System) || o.Code.Text == "" {
			t.Errorf("%s: first coding %+v", o.ID, o.Code.Coding[0])
		}
		if len(o.Code.Coding) == 1 {
			shapes["component code only"]++
		}
		for _, n := range o.Note {
			shapes["note: "+n.Text]++
		}
		if q := o.ValueQuantity; q != nil && q.Comparator != "" {
			shapes["comparator "+q.Comparator+string(q.Value)]++
		}
		for _, rr := range o.ReferenceRange {
			switch {
			case rr.Low == nil && rr.High == nil:
				shapes["text range "+rr.Text]++
			case len(rr.AppliesTo) > 0 && rr.AppliesTo[0].Coding[0].Code != "248152002":
				shapes["range for another sex"]++
			case rr.Age != nil:
				shapes["range by age"]++
			}
		}
		if o.Code.Text == "Potassium" && o.ValueQuantity != nil && string(o.ValueQuantity.Value) == "5.6" && len(o.Interpretation) == 0 {
			shapes["out-of-range potassium without a flag"]++
		}
		if len(o.Interpretation) > 0 && o.Interpretation[0].Coding[0].Code == "N" {
			shapes["lab N"]++
		}
	}
	for _, want := range []string{
		"component code only", "note: PATIENT WAS NOT FASTING", "comparator >60", "text range NR",
		"range for another sex", "range by age", "out-of-range potassium without a flag", "lab N",
	} {
		if shapes[want] == 0 {
			t.Errorf("no result has %q", want)
		}
	}
	if n := shapes["no interpretation"]; n*10 < len(obs)*9 {
		t.Errorf("%d of %d results have no interpretation, want most", n, len(obs))
	}

	// Reports name existing results, each result in at most one report; the
	// orders without a report (HbA1c, HIV) group their results by basedOn only.
	reports := d.reports(p.id, dataClock)
	inReport := map[string]bool{}
	for _, r := range reports {
		if r.Subject.Reference != "Patient/"+p.id || r.Category[0].Coding[0].Code != "LAB" || r.Code.Text == "" ||
			len(r.Performer) != 1 || r.Performer[0].Display == "" || r.EffectiveDateTime == "" || len(r.Result) == 0 {
			t.Errorf("report %+v", r)
		}
		for _, ref := range r.Result {
			id := strings.TrimPrefix(ref.Reference, "Observation/")
			if _, ok := byID[id]; !ok || inReport[id] {
				t.Errorf("report %s names %s: unknown or in another report", r.ID, ref.Reference)
			}
			inReport[id] = true
		}
	}
	if len(reports) == 0 || len(inReport) == len(obs) || len(inReport) == 0 {
		t.Errorf("%d reports hold %d of %d results; want some results outside any report", len(reports), len(inReport), len(obs))
	}
	if d.reports(patientSpecs[0].id, dataClock) != nil {
		t.Error("another patient has reports")
	}
}

// TestReportSearch: the DiagnosticReport search needs the scope, a patient
// and a category like Epic's, pages through opaque next links, and fails
// on cue.
func TestReportSearch(t *testing.T) {
	f := mustFixture(t, Switches{})
	scope := defaultScope + " patient/DiagnosticReport.read"
	code, verifier := f.mustCode(t, epicPatient.id, secretClient, scope)
	status, tokBody := f.tokenRequest(t, codeForm(code, verifier), secretClient, testSecret)
	if status != http.StatusOK || !strings.Contains(tokBody["scope"].(string), "patient/DiagnosticReport.read") {
		t.Fatalf("token %d %v", status, tokBody["scope"])
	}
	tok := tokBody["access_token"].(string)
	path := func(v url.Values) string { return "/fhir/R4/DiagnosticReport?" + v.Encode() }

	next := path(url.Values{"patient": {epicPatient.id}, "category": {"LAB"}, "_count": {"2"}})
	var ids []string
	for pages := 0; next != ""; pages++ {
		if pages > 20 {
			t.Fatal("paging does not end")
		}
		resp, body := f.get(t, next, tok)
		b := mustBundle(t, resp, body)
		for _, e := range b.Entry {
			var r diagnosticReport
			if err := json.Unmarshal(e.Resource, &r); err != nil || r.ResourceType != "DiagnosticReport" {
				t.Fatalf("entry %s: %v", e.Resource, err)
			}
			ids = append(ids, r.ID)
		}
		next = b.next()
		if strings.Contains(next, "_count") || strings.Contains(next, "page=") {
			t.Errorf("next link %q is not opaque", next)
		}
	}
	if want := len(newDataset().reports(epicPatient.id, dataClock)); len(ids) != want {
		t.Errorf("%d reports through paging, want %d", len(ids), want)
	}

	tests := []struct {
		name     string
		query    url.Values
		token    string
		sw       Switches
		status   int
		outcome  string
		reports  int
		outcomes []string
	}{
		{"no category", url.Values{"patient": {epicPatient.id}}, tok, Switches{}, 400, "4100", 0, nil},
		{"no patient", url.Values{"category": {"LAB"}}, tok, Switches{}, 400, "4100", 0, nil},
		{"another patient", url.Values{"patient": {patientSpecs[0].id}, "category": {"LAB"}}, tok, Switches{}, 403, "", 0, nil},
		{"another category", url.Values{"patient": {epicPatient.id}, "category": {"RAD"}}, tok, Switches{}, 200, "", 0, []string{"4101"}},
		{"system and code", url.Values{"patient": {epicPatient.id}, "category": {systemV20074 + "|LAB"}}, tok, Switches{}, 200, "", len(ids), nil},
		{"fails with 500", url.Values{"patient": {epicPatient.id}, "category": {"LAB"}}, tok, Switches{FailReports: 500}, 500, "", 0, nil},
		{"fails in a bundle", url.Values{"patient": {epicPatient.id}, "category": {"LAB"}}, tok, Switches{FailReports: 200}, 200, "", 0, []string{"59100"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.sim.SetSwitches(tt.sw)
			defer f.sim.SetSwitches(Switches{})
			resp, body := f.get(t, path(tt.query), tt.token)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %.300s", resp.StatusCode, tt.status, body)
			}
			if tt.status != 200 {
				if o := mustOutcome(t, body); tt.outcome != "" && o.code() != tt.outcome {
					t.Errorf("outcome code %q, want %q", o.code(), tt.outcome)
				}
				return
			}
			b := mustBundle(t, resp, body)
			var reports int
			var outcomes []string
			for _, e := range b.Entry {
				if e.Search.Mode == "outcome" {
					outcomes = append(outcomes, mustOutcome(t, e.Resource).code())
				} else {
					reports++
				}
			}
			if reports != tt.reports || strings.Join(outcomes, ",") != strings.Join(tt.outcomes, ",") {
				t.Errorf("%d reports, outcomes %v; want %d, %v", reports, outcomes, tt.reports, tt.outcomes)
			}
		})
	}
}

// TestReportScope: without the DiagnosticReport scope the search answers 403
// with an OperationOutcome; NoReportScope drops the scope from the grant, as
// Epic does when the app's registration lacks the API.
func TestReportScope(t *testing.T) {
	for _, tc := range []struct {
		name  string
		scope string
		sw    Switches
	}{
		{"not asked for", defaultScope, Switches{}},
		{"not granted", defaultScope + " patient/DiagnosticReport.read", Switches{NoReportScope: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := mustFixture(t, tc.sw)
			code, verifier := f.mustCode(t, epicPatient.id, secretClient, tc.scope)
			status, body := f.tokenRequest(t, codeForm(code, verifier), secretClient, testSecret)
			if status != http.StatusOK || strings.Contains(body["scope"].(string), "DiagnosticReport") {
				t.Fatalf("token %d, scope %v", status, body["scope"])
			}
			resp, out := f.get(t, "/fhir/R4/DiagnosticReport?patient="+epicPatient.id+"&category=LAB", body["access_token"].(string))
			if resp.StatusCode != http.StatusForbidden || mustOutcome(t, out).Issue[0].Severity != "error" {
				t.Errorf("status %d: %.200s", resp.StatusCode, out)
			}
			// The Observation search still works.
			resp, _ = f.get(t, searchPath(epicPatient.id, 0), body["access_token"].(string))
			if resp.StatusCode != http.StatusOK {
				t.Errorf("Observation search status %d", resp.StatusCode)
			}
		})
	}
}
