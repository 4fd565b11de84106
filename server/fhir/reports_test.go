package fhir

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// reportJSON is a lab DiagnosticReport with its results.
func reportJSON(id, subject string, results ...string) string {
	var refs []string
	for _, r := range results {
		refs = append(refs, fmt.Sprintf(`{"reference":"Observation/%s","display":"x"}`, r))
	}
	return fmt.Sprintf(`{"resourceType":"DiagnosticReport","id":%q,"status":"final",`+
		`"category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v2-0074","code":"LAB"}]}],`+
		`"code":{"text":"BASIC METABOLIC PANEL"},"subject":{"reference":%q},`+
		`"effectiveDateTime":"2024-03-05T14:07:00Z","issued":"2024-03-05T16:00:00Z",`+
		`"performer":[{"reference":"Organization/1","display":"Riverside Core Laboratory"}],`+
		`"basedOn":[{"reference":"ServiceRequest/o1","display":"BMP"}],`+
		`"conclusion":"See note.","result":[%s]}`, id, subject, strings.Join(refs, ","))
}

// TestReportsPaging follows opaque next links, asks for category LAB, and
// keeps every report field the views use.
func TestReportsPaging(t *testing.T) {
	var f *fakeEHR
	f = newFakeEHR(t, func(w http.ResponseWriter, r *http.Request) {
		switch pageOf(r) {
		case "1":
			writeJSON(w, 200, bundleJSON(f.srv.URL+basePath+"/DiagnosticReport?page=2",
				entry(reportJSON("r1", "Patient/"+testPatient, "a", "b"), "match"),
				entry(outcomeJSON("information", "4101"), "outcome")))
		default:
			writeJSON(w, 200, bundleJSON("",
				entry(reportJSON("r2", f.srv.URL+basePath+"/Patient/"+testPatient, "c"), "match"),
				entry(`{"resourceType":"DiagnosticReport","id":"r3","status":"entered-in-error","subject":{"reference":"Patient/`+testPatient+`"}}`, "match"),
				entry(`{"resourceType":"Observation","id":"x"}`, "include")))
		}
	})
	res := f.client().Reports(context.Background(), testPatient)
	if res.Failed() || res.Pages != 2 {
		t.Fatalf("failed %v, err %v, pages %d", res.Failed(), res.Err, res.Pages)
	}
	reqs := f.requests()
	if len(reqs) != 2 || reqs[0] != basePath+"/DiagnosticReport?_count=50&category=LAB&patient="+testPatient {
		t.Errorf("requests %v", reqs)
	}
	var ids []string
	for _, r := range res.Reports {
		ids = append(ids, r.ID)
	}
	if diff := cmp.Diff([]string{"r1", "r2"}, ids); diff != "" {
		t.Errorf("reports (-want +got):\n%s", diff)
	}
	r1 := res.Reports[0]
	if r1.Code.Text != "BASIC METABOLIC PANEL" || r1.Status != "final" || r1.Conclusion != "See note." ||
		r1.Effective.IsZero() || r1.Issued.IsZero() ||
		!cmp.Equal(r1.Results, []string{"Observation/a", "Observation/b"}) ||
		!cmp.Equal(r1.Performers, []Reference{{Reference: "Organization/1", Display: "Riverside Core Laboratory"}}) ||
		!cmp.Equal(r1.BasedOn, []Reference{{Reference: "ServiceRequest/o1", Display: "BMP"}}) {
		t.Errorf("report %+v", r1)
	}
}

// TestReportsFailures: every way the search can fail marks it failed, so
// that none of it is used; a report about another patient is one of them.
func TestReportsFailures(t *testing.T) {
	tests := []struct {
		name   string
		handle func(w http.ResponseWriter, r *http.Request)
		kind   ErrorKind
	}{
		{"forbidden", func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, 403, outcomeJSON("error", "59204"))
		}, KindForbidden},
		{"bad request", func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, 400, outcomeJSON("error", "4100"))
		}, KindRequest},
		{"error outcome in a bundle", func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, 200, bundleJSON("", entry(outcomeJSON("error", "59204"), "outcome")))
		}, ""},
		{"wrong patient", func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, 200, bundleJSON("", entry(reportJSON("r1", "Patient/someone-else", "a"), "match")))
		}, KindWrongPatient},
		{"not a bundle", func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, 200, `{"resourceType":"DiagnosticReport"}`)
		}, KindMalformed},
		{"bad json", func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, 200, `{"resourceType":"Bundle","entry":[`)
		}, KindMalformed},
		{"next link elsewhere", func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, 200, bundleJSON("https://elsewhere.example/DiagnosticReport?page=2"))
		}, KindMalformed},
		{"server error", func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, 500, outcomeJSON("fatal", "x"))
		}, KindUpstream},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeEHR(t, tt.handle)
			res := f.client().Reports(context.Background(), testPatient)
			if !res.Failed() {
				t.Fatalf("not failed: %+v", res)
			}
			if tt.kind != "" && KindOf(res.Err) != tt.kind {
				t.Errorf("kind %q, want %q (%v)", KindOf(res.Err), tt.kind, res.Err)
			}
		})
	}
	var nilResult *ReportsResult
	if !nilResult.Failed() {
		t.Error("a missing result is not failed")
	}
}
