package ehrsim

import (
	"encoding/json"
	"slices"
	"strconv"
	"time"
)

// systemEdge is the local code system of the edge-case tests: they carry no
// LOINC code, so an app groups them by name.
const systemEdge = "urn:oid:1.2.840.114350.1.13.0.1.7.5.737384.99"

// edgeResult is one result of an edge-case test: its value as JSON number
// text, when it was collected, and its flag.
type edgeResult struct {
	value, at, flag string
}

// edgeTest is one test of the edge-case patient: a name, a unit, a reference
// range as JSON number texts ("" leaves that side open), and its results,
// newest first.
type edgeTest struct {
	name, unit string
	low, high  string
	results    []edgeResult
}

// edgeTests are numbers and dates an EHR may send that break naive charts
// and arithmetic: values one rounding error apart (0.3 and
// 0.30000000000000004), at the ends of the float64 range, subnormal,
// beyond it (1e400, 1e-400: JSON allows any number of digits), all equal,
// ranges with low == high and low > high, and dates in years 0001 and 9999.
// Dates are absolute: they test the calendar's ends, not the data's age.
var edgeTests = []edgeTest{
	{"Edge: one rounding error apart", "mmol/L", "0.3", "0.30000000000000004", []edgeResult{
		{"0.30000000000000004", "2025-03-04T08:00:00-05:00", ""},
		{"0.3", "2025-03-03T08:00:00-05:00", ""},
		{"0.30000000000000004", "2025-03-02T08:00:00-05:00", ""},
		{"0.3", "2025-03-01T08:00:00-05:00", ""},
	}},
	{"Edge: largest numbers", "U/L", "-1e308", "1e308", []edgeResult{
		{"1.7976931348623157e308", "2025-03-04T08:00:00-05:00", "HH"},
		{"-1.7976931348623157e308", "2025-03-03T08:00:00-05:00", "LL"},
		{"-1e308", "2025-03-02T08:00:00-05:00", ""},
		{"1e308", "2025-03-01T08:00:00-05:00", ""},
	}},
	{"Edge: smallest numbers", "ng/L", "5e-324", "1e-310", []edgeResult{
		{"5e-324", "2025-03-04T08:00:00-05:00", ""},
		{"1e-323", "2025-03-03T08:00:00-05:00", ""},
		{"2.2250738585072014e-308", "2025-03-02T08:00:00-05:00", "H"},
		{"0", "2025-03-01T08:00:00-05:00", "L"},
	}},
	{"Edge: beyond float range", "mg/dL", "1e-400", "1e400", []edgeResult{
		{"1e400", "2025-03-05T08:00:00-05:00", "HH"},
		{"5.1", "2025-03-04T08:00:00-05:00", ""},
		{"-1e400", "2025-03-03T08:00:00-05:00", "LL"},
		{"1e-400", "2025-03-02T08:00:00-05:00", ""},
		{"4.2", "2025-03-01T08:00:00-05:00", ""},
	}},
	{"Edge: all equal", "mmol/L", "7", "7", []edgeResult{
		{"7.0", "2025-03-04T08:00:00-05:00", ""},
		{"7", "2025-03-03T08:00:00-05:00", ""},
		{"7", "2025-03-02T08:00:00-05:00", ""},
		{"7", "2025-03-01T08:00:00-05:00", ""},
	}},
	{"Edge: range low above high", "mmol/L", "5.1", "3.5", []edgeResult{
		{"4.3", "2025-03-03T08:00:00-05:00", ""},
		{"4.4", "2025-03-02T08:00:00-05:00", ""},
		{"4.1", "2025-03-01T08:00:00-05:00", ""},
	}},
	{"Edge: years 0001 and 9999", "mmol/L", "3.5", "5.1", []edgeResult{
		{"5.0", "9999-12-31T23:59:59Z", ""},
		{"4.9", "9999-12-31", ""},
		{"4.4", "2025-03-01T08:00:00-05:00", ""},
		{"4.2", "0001-01-02", ""},
		{"4.1", "0001-01-01T08:30:00Z", ""},
	}},
	{"Edge: smallest numbers one apart", "ng/L", "", "", []edgeResult{
		{"1e-323", "2025-03-02T08:00:00-05:00", ""},
		{"5e-324", "2025-03-01T08:00:00-05:00", ""},
	}},
}

// edgeResultCount is how many results edgeTests hold.
const edgeResultCount = 31

// generateEdge builds the edge-case patient's observations, newest first by
// collection time.
func generateEdge(p *patientSpec) []observation {
	var obs []observation
	for ti, et := range edgeTests {
		for ri, r := range et.results {
			at, dateOnly := parseEdgeTime(r.at)
			issued := at.UTC()
			if dateOnly {
				issued = issued.Add(12 * time.Hour)
			}
			o := observation{
				ResourceType: "Observation",
				ID:           observationID(p.id, ti*100+ri),
				Status:       "final",
				Category: []codeableConcept{{
					Coding: []coding{{System: systemCategory, Code: "laboratory", Display: "Laboratory"}},
					Text:   "Laboratory",
				}},
				Code:              codeableConcept{Coding: []coding{{System: systemEdge, Code: "EDGE-" + strconv.Itoa(ti+1), Display: et.name}}, Text: et.name},
				Subject:           reference{Reference: "Patient/" + p.id, Display: p.given + " " + p.family},
				EffectiveDateTime: r.at,
				Issued:            issued.Format(time.RFC3339),
				ValueQuantity:     &quantity{Value: json.Number(r.value), Unit: et.unit, System: systemUCUM, Code: et.unit},
				Interpretation:    interp(r.flag),
			}
			rr := referenceRange{Text: et.low + " - " + et.high + " " + et.unit}
			if et.low != "" {
				rr.Low = &quantity{Value: json.Number(et.low), Unit: et.unit, System: systemUCUM, Code: et.unit}
			}
			if et.high != "" {
				rr.High = &quantity{Value: json.Number(et.high), Unit: et.unit, System: systemUCUM, Code: et.unit}
			}
			if et.low != "" || et.high != "" {
				o.ReferenceRange = []referenceRange{rr}
			}
			obs = append(obs, o)
		}
	}
	sortNewestFirst(obs)
	return obs
}

// parseEdgeTime reads an edge result's dateTime: full, or a date alone.
func parseEdgeTime(s string) (t time.Time, dateOnly bool) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, false
	}
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		panic("ehrsim: bad edge-case date " + s)
	}
	return t, true
}

// sortNewestFirst orders observations newest first by collection time, as
// Epic returns a search; ties keep their order.
func sortNewestFirst(obs []observation) {
	at := make(map[string]time.Time, len(obs))
	for _, o := range obs {
		at[o.ID], _ = parseEdgeTime(o.EffectiveDateTime)
	}
	slices.SortStableFunc(obs, func(a, b observation) int { return at[b.ID].Compare(at[a.ID]) })
}
