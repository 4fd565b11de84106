package fhir

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// mustReadFixture reads testdata/name.
func mustReadFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// mustTime parses an RFC 3339 time.
func mustTime(t testing.TB, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestDecodeObservation(t *testing.T) {
	loinc := func(code, display string) Coding { return Coding{System: loincSystem, Code: code, Display: display} }
	interp := func(code string) Concept {
		return Concept{Codings: []Coding{{System: "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation", Code: code}}}
	}
	tests := []struct {
		fixture string
		want    func(t *testing.T) Observation
	}{
		{
			fixture: "obs-quantity-comparator.json",
			want: func(t *testing.T) Observation {
				n := interp("N")
				n.Text = "Normal"
				return Observation{
					ID: "q1", Status: "final",
					Code: Concept{Text: "CRP", Codings: []Coding{
						{System: "urn:oid:1.2.840.114350", Code: "1234", Display: "C-REACTIVE PROTEIN"},
						loinc("1988-5", "C reactive protein [Mass/volume] in Serum or Plasma"),
					}},
					LOINC:     "1988-5",
					Subject:   "Patient/pat1",
					Effective: mustTime(t, "2024-03-05T20:07:00Z"),
					Issued:    mustTime(t, "2024-03-05T21:00:00.123Z"),
					Value: Value{Kind: ValueQuantity, Quantity: Quantity{
						Value: 0.5, ValueText: "0.50", Comparator: "<", Unit: "mg/dL", System: "http://unitsofmeasure.org", Code: "mg/dL",
					}},
					Ranges:         []Range{{High: &Quantity{Value: 1, ValueText: "1.0", Unit: "mg/dL"}}},
					Interpretation: []Concept{n},
				}
			},
		},
		{
			fixture: "obs-string.json",
			want: func(t *testing.T) Observation {
				return Observation{
					ID: "s1", Status: "final",
					Code:      Concept{Codings: []Coding{loinc("5778-6", "Color of Urine")}},
					LOINC:     "5778-6",
					Subject:   "https://ehr.example/fhir/R4/Patient/pat1",
					Effective: mustTime(t, "2024-03-05T14:07:00-06:00"),
					Value:     Value{Kind: ValueString, String: "Straw <b>yellow</b>"},
					Ranges:    []Range{{Text: "Yellow"}},
				}
			},
		},
		{
			fixture: "obs-codeable.json",
			want: func(t *testing.T) Observation {
				return Observation{
					ID: "c1", Status: "preliminary",
					Code:              Concept{Text: "SARS-CoV-2 RNA", Codings: []Coding{loinc("94500-6", "")}},
					LOINC:             "94500-6",
					Subject:           "Patient/pat1",
					Effective:         mustTime(t, "2024-03-04T00:00:00Z"),
					EffectiveDateOnly: true,
					Value: Value{Kind: ValueCodeable, Concept: Concept{Codings: []Coding{
						{System: "http://snomed.info/sct", Code: "10828004", Display: "Positive"},
					}}},
					Interpretation: []Concept{interp("A")},
				}
			},
		},
		{
			fixture: "obs-components.json",
			want: func(t *testing.T) Observation {
				return Observation{
					ID: "bp1", Status: "final",
					Code:      Concept{Text: "Blood pressure", Codings: []Coding{loinc("85354-9", "")}},
					LOINC:     "85354-9",
					Subject:   "Patient/pat1",
					Effective: mustTime(t, "2024-03-01T08:00:00+01:00"),
					Components: []Component{
						{
							Code:           Concept{Text: "Systolic", Codings: []Coding{loinc("8480-6", "")}},
							Value:          Value{Kind: ValueQuantity, Quantity: Quantity{Value: 150, ValueText: "150", Unit: "mm[Hg]"}},
							Ranges:         []Range{{Low: &Quantity{Value: 90, ValueText: "90"}, High: &Quantity{Value: 120, ValueText: "120"}}},
							Interpretation: []Concept{{Codings: []Coding{{Code: "H"}}}},
						},
						{
							Code: Concept{Text: "Diastolic"},
							Absent: &Concept{Codings: []Coding{
								{System: "http://terminology.hl7.org/CodeSystem/data-absent-reason", Code: "not-performed", Display: "Not Performed"},
							}},
						},
					},
					HasMember:   []string{"Observation/m1"},
					DerivedFrom: []string{"Observation/d1", "DocumentReference/x"},
				}
			},
		},
		{
			fixture: "obs-absent.json",
			want: func(t *testing.T) Observation {
				return Observation{
					ID: "a1", Status: "final",
					Code:      Concept{Text: "Potassium"},
					Subject:   "Patient/pat1",
					Effective: mustTime(t, "2024-02-29T23:30:00Z"),
					Absent: &Concept{Text: "Specimen hemolyzed", Codings: []Coding{
						{System: "http://terminology.hl7.org/CodeSystem/data-absent-reason", Code: "error"},
					}},
				}
			},
		},
		{
			fixture: "obs-corrected.json",
			want: func(t *testing.T) Observation {
				h := interp("H")
				h.Codings[0].Display = "High"
				return Observation{
					ID: "k2", Status: "corrected",
					Code:      Concept{Text: "Potassium", Codings: []Coding{loinc("2823-3", "Potassium [Moles/volume] in Serum or Plasma")}},
					LOINC:     "2823-3",
					Subject:   "Patient/pat1",
					Effective: mustTime(t, "2024-03-05T14:07:00.5Z"),
					Value: Value{Kind: ValueQuantity, Quantity: Quantity{
						Value: 5.4, ValueText: "5.40", Unit: "mmol/L", System: "http://unitsofmeasure.org", Code: "mmol/L",
					}},
					Ranges: []Range{{
						Low:  &Quantity{Value: 3.5, ValueText: "3.5", Unit: "mmol/L"},
						High: &Quantity{Value: 5.1, ValueText: "5.1", Unit: "mmol/L"},
						Text: "3.5 - 5.1 mmol/L",
					}},
					Interpretation: []Concept{h},
				}
			},
		},
		{
			fixture: "obs-entered-in-error.json",
			want: func(t *testing.T) Observation {
				return Observation{
					ID: "e1", Status: "entered-in-error",
					Code:      Concept{Text: "Sodium"},
					Subject:   "Patient/pat1",
					Effective: mustTime(t, "2024-03-05T14:07:00Z"),
					Value:     Value{Kind: ValueQuantity, Quantity: Quantity{Value: 140, ValueText: "140", Unit: "mmol/L"}},
				}
			},
		},
		{
			fixture: "obs-epic.json",
			want: func(t *testing.T) Observation {
				ucum := "http://unitsofmeasure.org"
				return Observation{
					ID: "eK1", Status: "final",
					Code: Concept{Text: "POTASSIUM", Codings: []Coding{
						{System: "urn:oid:1.2.840.114350.1.13.501.2.7.2.768282", Code: "1526", Display: "POTASSIUM"},
					}},
					Subject:   "Patient/pat1",
					Effective: mustTime(t, "2024-03-05T14:07:00Z"),
					Issued:    mustTime(t, "2024-03-05T16:30:00Z"),
					Value: Value{Kind: ValueQuantity, Quantity: Quantity{
						Value: 5.6, ValueText: "5.6", Unit: "mmol/L", System: ucum, Code: "mmol/L",
					}},
					Ranges: []Range{
						{
							Low:       &Quantity{Value: 3.5, ValueText: "3.5", Unit: "mmol/L", System: ucum, Code: "mmol/L"},
							High:      &Quantity{Value: 5.1, ValueText: "5.1", Unit: "mmol/L", System: ucum, Code: "mmol/L"},
							Text:      "3.5 - 5.1 mmol/L",
							Type:      &Concept{Codings: []Coding{{System: "http://terminology.hl7.org/CodeSystem/referencerange-meaning", Code: "normal"}}},
							AppliesTo: []Concept{{Codings: []Coding{{System: "http://snomed.info/sct", Code: "248152002", Display: "Female"}}}},
							AgeLow:    &Quantity{Value: 18, ValueText: "18", Unit: "years", System: ucum, Code: "a"},
						},
						{Text: "NR"},
					},
					BasedOn:    []Reference{{Reference: "ServiceRequest/o77", Display: "BASIC METABOLIC PANEL"}},
					Notes:      []string{"SPECIMEN SLIGHTLY HEMOLYZED.", "Repeat advised."},
					Specimen:   Reference{Reference: "Specimen/s9", Display: "Blood"},
					Performers: []Reference{{Reference: "Organization/lab1", Display: "Riverside Core Laboratory"}},
				}
			},
		},
		{
			fixture: "obs-period.json",
			want: func(t *testing.T) Observation {
				return Observation{
					ID: "p1", Status: "amended",
					Code:      Concept{Text: "Creatinine clearance, 24 h"},
					Subject:   "Patient/pat1",
					Effective: mustTime(t, "2024-03-01T07:00:00-06:00"),
					Value:     Value{Kind: ValueQuantity, Quantity: Quantity{Value: 95, ValueText: "95", Unit: "mL/min", Code: "mL/min"}},
					Ranges:    []Range{{Low: &Quantity{Value: 90, ValueText: "90", Unit: "mL/min"}}},
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			got, err := decodeObservation(mustReadFixture(t, tt.fixture))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want(t), got); diff != "" {
				t.Errorf("decodeObservation mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseDateTime(t *testing.T) {
	tests := []struct {
		in           string
		want         string // RFC 3339, empty for the zero time
		wantDateOnly bool
	}{
		{"2024-03-05T14:07:00-06:00", "2024-03-05T14:07:00-06:00", false},
		{"2024-03-05T14:07:00.123456Z", "2024-03-05T14:07:00.123456Z", false},
		{"2024-03-05", "2024-03-05T00:00:00Z", true},
		{"2024-03", "2024-03-01T00:00:00Z", true},
		{"2024", "2024-01-01T00:00:00Z", true},
		{"", "", false},
		{"yesterday", "", false},
		{"2024-03-05T14:07", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, dateOnly := parseDateTime(tt.in)
			var want time.Time
			if tt.want != "" {
				want = mustTime(t, tt.want)
			}
			if !got.Equal(want) || dateOnly != tt.wantDateOnly {
				t.Errorf("parseDateTime(%q) = %v, %v; want %v, %v", tt.in, got, dateOnly, want, tt.wantDateOnly)
			}
		})
	}
}

func TestDecodePatient(t *testing.T) {
	var w wirePatient
	if err := json.Unmarshal(mustReadFixture(t, "patient.json"), &w); err != nil {
		t.Fatal(err)
	}
	want := &Patient{ID: "pat1", Name: "Lopez, Camila Maria", BirthDate: "1987-09-12", Gender: "female", MRN: "203713"}
	if diff := cmp.Diff(want, toPatient(&w)); diff != "" {
		t.Errorf("toPatient mismatch (-want +got):\n%s", diff)
	}
}

func TestFormatName(t *testing.T) {
	tests := []struct {
		name  string
		names []wireHumanName
		want  string
	}{
		{"official preferred", []wireHumanName{{Use: "usual", Family: "A", Given: []string{"B"}}, {Use: "official", Family: "C", Given: []string{"D"}}}, "C, D"},
		{"usual over other", []wireHumanName{{Use: "nickname", Text: "Bo"}, {Use: "usual", Family: "A"}}, "A"},
		{"first when no use", []wireHumanName{{Given: []string{"Ann", "Lee"}}, {Family: "X"}}, "Ann Lee"},
		{"text fallback", []wireHumanName{{Text: "Jane Q. Public"}}, "Jane Q. Public"},
		{"none", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := toPatient(&wirePatient{Name: tt.names}).Name
			if got != tt.want {
				t.Errorf("name = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestToOutcomes(t *testing.T) {
	issue := func(severity, code string) wireIssue {
		return wireIssue{Severity: severity, Code: "processing", Details: wireConcept{
			Text:   "Patient Jane Doe record restricted", // Never shown: may hold PHI.
			Coding: []wireCoding{{System: "urn:oid:1.2.840.114350.1.13.0.1.7.2.657369", Code: code}},
		}}
	}
	tests := []struct {
		name  string
		issue wireIssue
		want  Outcome
	}{
		{"4101 no results", issue("information", "4101"), Outcome{Code: "4101", Level: LevelInfo, Message: epicOutcomes["4101"].message}},
		{"4119 more data", issue("warning", "4119"), Outcome{Code: "4119", Level: LevelWarning, Message: epicOutcomes["4119"].message}},
		{"4130 restricted", issue("warning", "4130"), Outcome{Code: "4130", Level: LevelWarning, Message: epicOutcomes["4130"].message, Incomplete: true}},
		{"4131 restricted", issue("warning", "4131"), Outcome{Code: "4131", Level: LevelWarning, Message: epicOutcomes["4131"].message, Incomplete: true}},
		{"59204 no API", issue("fatal", "59204"), Outcome{Code: "59204", Level: LevelError, Message: epicOutcomes["59204"].message}},
		{"unknown error", issue("error", "99999"), Outcome{Code: "99999", Level: LevelError, Message: genericOutcome[LevelError]}},
		{"unknown warning", issue("warning", "88888"), Outcome{Code: "88888", Level: LevelWarning, Message: genericOutcome[LevelWarning]}},
		{"no coding", wireIssue{Severity: "information", Code: "informational", Details: wireConcept{Text: "x"}}, Outcome{Code: "informational", Level: LevelInfo, Message: genericOutcome[LevelInfo]}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := toOutcomes(&wireOperationOutcome{ResourceType: "OperationOutcome", Issue: []wireIssue{tt.issue}})
			if diff := cmp.Diff([]Outcome{tt.want}, got); diff != "" {
				t.Errorf("toOutcomes mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestDecodeNumbersBeyondFloatRange: a decimal beyond float64 range keeps its
// text, has Value 0 and is marked Unrepresentable, in both decoders; it
// once became ±Inf (or silently 0 when it underflowed).
func TestDecodeNumbersBeyondFloatRange(t *testing.T) {
	tests := []struct {
		text  string
		value float64
		unrep bool
	}{
		{"1e400", 0, true},
		{"-1e400", 0, true},
		{"1.7976931348623159e308", 0, true},
		{"1e-400", 0, true},
		{"-2e-324", 0, true},
		{"0." + strings.Repeat("0", 400) + "1", 0, true},
		{"0." + strings.Repeat("0", 309) + "1", 1e-310, false},
		{"0e400", 0, false},
		{"-0.000e-999", 0, false},
		{"0", 0, false},
		{"5e-324", 5e-324, false},
		{"1e308", 1e308, false},
		{"-1.7976931348623157e308", -1.7976931348623157e308, false},
		{"0.30000000000000004", 0.30000000000000004, false},
		{"5.40", 5.4, false},
	}
	for _, tt := range tests {
		body := wrapEntries(`{"resourceType":"Observation","subject":{"reference":"Patient/p1"},"valueQuantity":{"value":` + tt.text +
			`},"referenceRange":[{"low":{"value":` + tt.text + `},"high":{"value":` + tt.text + `}}]}`)
		for name, decode := range map[string]func([]byte, string) (*page, error){"stream": decodeBundleStream, "reflect": decodeBundleReflect} {
			p, err := decode(body, "p1")
			if err != nil || len(p.observations) != 1 {
				t.Fatalf("%s %s: %v", name, tt.text, err)
			}
			o := p.observations[0]
			for _, q := range []*Quantity{&o.Value.Quantity, o.Ranges[0].Low, o.Ranges[0].High} {
				if q.ValueText != tt.text || q.Value != tt.value || q.Unrepresentable != tt.unrep {
					t.Errorf("%s %s: got %q, %v, unrepresentable %v; want %v, %v", name, tt.text, q.ValueText, q.Value, q.Unrepresentable, tt.value, tt.unrep)
				}
			}
		}
	}
}
