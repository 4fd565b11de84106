package ehrsim

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestEdgePatient: the edge-case patient's results are sent with their
// numbers as written (1e400 stays 1e400 in the JSON), dates in years 0001
// and 9999, ranges with low == high and low > high, newest first.
func TestEdgePatient(t *testing.T) {
	d := newDataset()
	var p *patientSpec
	for _, s := range d.patients {
		if s.edge {
			p = s
		}
	}
	if p == nil {
		t.Fatal("no edge-case patient")
	}
	obs := d.observations(p.id, dataClock)
	if len(obs) != p.results || p.info().ResultCount != len(obs) {
		t.Fatalf("%d observations, spec says %d", len(obs), p.results)
	}
	body, err := json.Marshal(obs)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`"value":0.30000000000000004`, `"value":1.7976931348623157e308`, `"value":-1e308`, `"value":5e-324`,
		`"value":1e400`, `"value":-1e400`, `"value":1e-400`,
		`"effectiveDateTime":"0001-01-01T08:30:00Z"`, `"effectiveDateTime":"0001-01-02"`,
		`"effectiveDateTime":"9999-12-31T23:59:59Z"`, `"effectiveDateTime":"9999-12-31"`,
		`"low":{"value":7,`, `"high":{"value":7,`, `"low":{"value":5.1,`, `"high":{"value":3.5,`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("the edge-case results never send %s", want)
		}
	}
	ids := map[string]bool{}
	var prev time.Time
	for i, o := range obs {
		at, _ := parseEdgeTime(o.EffectiveDateTime)
		if i > 0 && at.After(prev) {
			t.Errorf("%s at %v comes after an older result", o.ID, at)
		}
		prev = at
		if ids[o.ID] || o.Subject.Reference != "Patient/"+p.id || o.Category[0].Coding[0].Code != "laboratory" {
			t.Errorf("observation %+v", o)
		}
		ids[o.ID] = true
	}
}
