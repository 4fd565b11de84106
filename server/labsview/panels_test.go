package labsview

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"smartlabs/components/labs"
	"smartlabs/server/fhir"
)

// TestPanelsPrecedence: a result is grouped by the report that lists it,
// else by its order, else by the grouping result that lists it; a panel's
// heading shows its newest report; results in no panel come last.
func TestPanelsPrecedence(t *testing.T) {
	day := func(d int) time.Time { return time.Date(2026, 11, d, 8, 0, 0, 0, time.UTC) }
	ordered := func(o fhir.Observation, display string) fhir.Observation {
		o.BasedOn = []fhir.Reference{{Reference: "ServiceRequest/" + o.ID, Display: display}}
		return o
	}
	obs := []fhir.Observation{
		// Potassium and sodium: reported in a BMP report (days 1 and 3); their order says otherwise.
		ordered(obsAt("k1", "2823-3", "Potassium", "4.1", day(1), ""), "ORDER NAME NOT USED"),
		ordered(obsAt("k3", "2823-3", "Potassium", "4.4", day(3), ""), "ORDER NAME NOT USED"),
		ordered(obsAt("n3", "2951-2", "Sodium", "140", day(3), ""), "ORDER NAME NOT USED"),
		// HbA1c: no report, an order.
		ordered(obsAt("a3", "4548-4", "Hemoglobin A1c", "5.4", day(3), ""), "HEMOGLOBIN A1C"),
		// Glucose: listed by a grouping result only.
		{ID: "g", Status: "final", Code: fhir.Concept{Text: "Glucose tolerance"}, Effective: day(2), HasMember: []string{"Observation/gl"}},
		obsAt("gl", "2345-7", "Glucose", "90", day(2), ""),
		// Hemoglobin: in nothing.
		obsAt("h", "718-7", "Hemoglobin", "13", day(2), ""),
		// An order without display groups nothing.
		func() fhir.Observation {
			o := obsAt("c", "2160-0", "Creatinine", "0.9", day(2), "")
			o.BasedOn = []fhir.Reference{{Reference: "ServiceRequest/x"}}
			return o
		}(),
	}
	reports := Reports([]fhir.DiagnosticReport{
		{ID: "r1", Status: "final", Code: fhir.Concept{Text: "BASIC METABOLIC PANEL"}, Effective: day(1),
			Results: []string{"Observation/k1"}, Performers: []fhir.Reference{{Display: "Old Lab"}}},
		{ID: "r3", Status: "preliminary", Code: fhir.Concept{Text: "BASIC METABOLIC PANEL"}, Effective: day(3), Conclusion: "Hemolyzed.",
			Results: []string{"Observation/k3", "Observation/n3", "Observation/unknown"}, Performers: []fhir.Reference{{Reference: "Organization/1"}, {Display: "Riverside Core Laboratory"}}},
	}, time.UTC)
	rs := Results(obs, time.UTC)
	s := SummaryWith(rs, PanelsOf(rs, reports), labs.Filter{Sort: "name"}, "/l/L")
	got := map[string][]string{}
	var order []string
	for _, g := range s.Groups {
		order = append(order, g.Name)
		for _, a := range g.Lines {
			got[g.Name] = append(got[g.Name], a.Name)
		}
	}
	want := map[string][]string{
		"BASIC METABOLIC PANEL": {"Potassium", "Sodium"},
		"HEMOGLOBIN A1C":        {"Hemoglobin A1c"},
		"Glucose tolerance":     {"Glucose"},
		"":                      {"Creatinine", "Hemoglobin"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("panels (-want +got):\n%s", diff)
	}
	if order[len(order)-1] != "" {
		t.Errorf("groups %q: ungrouped results are not last", order)
	}
	wantReport := &labs.Report{Name: "BASIC METABOLIC PANEL", Collected: "2026-11-03 08:00", CollectedISO: "2026-11-03T08:00:00Z",
		Status: "preliminary", StatusNote: "Preliminary", Performer: "Riverside Core Laboratory", Conclusion: "Hemolyzed."}
	for _, g := range s.Groups {
		switch g.Name {
		case "BASIC METABOLIC PANEL":
			if diff := cmp.Diff(wantReport, g.Report); diff != "" {
				t.Errorf("report (-want +got):\n%s", diff)
			}
		default:
			if g.Report != nil {
				t.Errorf("group %q has a report", g.Name)
			}
		}
	}

	// Without reports, the order's display groups the results.
	s = SummaryWith(rs, PanelsOf(rs, nil), labs.Filter{Sort: "name"}, "/l/L")
	got = map[string][]string{}
	for _, g := range s.Groups {
		for _, a := range g.Lines {
			got[g.Name] = append(got[g.Name], a.Name)
		}
	}
	if names := got["ORDER NAME NOT USED"]; !cmp.Equal(names, []string{"Potassium", "Sodium"}) {
		t.Errorf("without reports: %v", got)
	}
}
