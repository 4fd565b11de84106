package labsview

import (
	"errors"
	"testing"
	"time"
	_ "time/tzdata" // The zone tests must not depend on the machine's zoneinfo.

	"github.com/google/go-cmp/cmp"

	"smartlabs/components/labs"
	"smartlabs/server/fhir"
)

// mustLoadLocation loads an IANA time zone.
func mustLoadLocation(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// mustTime parses an RFC 3339 time.
func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func qty(text, unit string) fhir.Value {
	return fhir.Value{Kind: fhir.ValueQuantity, Quantity: fhir.Quantity{ValueText: text, Unit: unit}}
}

func interp(code string) []fhir.Concept {
	return []fhir.Concept{{Codings: []fhir.Coding{{System: "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation", Code: code}}}}
}

func TestRowShapes(t *testing.T) {
	at := mustTime(t, "2024-03-05T20:07:00Z")
	tests := []struct {
		name string
		obs  fhir.Observation
		want labs.Row
	}{
		{
			name: "quantity with comparator",
			obs: fhir.Observation{
				ID: "q1", Status: "final", Code: fhir.Concept{Text: "CRP"}, Effective: at,
				Value:  fhir.Value{Kind: fhir.ValueQuantity, Quantity: fhir.Quantity{Value: 0.5, ValueText: "0.50", Comparator: "<", Unit: "mg/dL", Code: "mg/dL"}},
				Ranges: []fhir.Range{{High: &fhir.Quantity{ValueText: "1.0", Unit: "mg/dL"}}},
			},
			want: labs.Row{ID: "q1", Name: "CRP", Value: "<0.50", Unit: "mg/dL", Range: "≤ 1.0", Collected: "2024-03-05 20:07", CollectedISO: "2024-03-05T20:07:00Z", Status: "final"},
		},
		{
			name: "quantity keeps trailing zero, unit from code, name from display",
			obs: fhir.Observation{
				ID: "k1", Status: "final", Effective: at,
				Code:           fhir.Concept{Codings: []fhir.Coding{{Code: "2823-3"}, {System: "http://loinc.org", Code: "2823-3", Display: "Potassium"}}},
				Value:          fhir.Value{Kind: fhir.ValueQuantity, Quantity: fhir.Quantity{Value: 5.4, ValueText: "5.40", Code: "mmol/L"}},
				Ranges:         []fhir.Range{{Low: &fhir.Quantity{ValueText: "3.5"}, High: &fhir.Quantity{ValueText: "5.1"}, Text: "3.5 - 5.1 mmol/L"}},
				Interpretation: interp("H"),
			},
			want: labs.Row{ID: "k1", Name: "Potassium", Value: "5.40", Unit: "mmol/L", Range: "3.5–5.1", Flag: labs.FlagHigh, FlagText: "High", Collected: "2024-03-05 20:07", CollectedISO: "2024-03-05T20:07:00Z", Status: "final"},
		},
		{
			name: "string value kept as text",
			obs: fhir.Observation{
				ID: "s1", Status: "final", Effective: at,
				Code:   fhir.Concept{Text: "<script>alert(1)</script>"},
				Value:  fhir.Value{Kind: fhir.ValueString, String: "Straw <b>yellow</b>"},
				Ranges: []fhir.Range{{Text: "Yellow"}},
			},
			want: labs.Row{ID: "s1", Name: "<script>alert(1)</script>", Value: "Straw <b>yellow</b>", Range: "Yellow", Collected: "2024-03-05 20:07", CollectedISO: "2024-03-05T20:07:00Z", Status: "final"},
		},
		{
			name: "codeable value, preliminary, date only",
			obs: fhir.Observation{
				ID: "c1", Status: "preliminary",
				Code:              fhir.Concept{Codings: []fhir.Coding{{System: "http://loinc.org", Code: "94500-6"}}},
				Effective:         mustTime(t, "2024-03-04T00:00:00Z"),
				EffectiveDateOnly: true,
				Value:             fhir.Value{Kind: fhir.ValueCodeable, Concept: fhir.Concept{Codings: []fhir.Coding{{Code: "10828004", Display: "Positive"}}}},
				Interpretation:    interp("A"),
			},
			want: labs.Row{ID: "c1", Name: "94500-6", Value: "Positive", Flag: labs.FlagAbnormal, FlagText: "Abnormal", Collected: "2024-03-04", CollectedISO: "2024-03-04", Status: "preliminary", StatusNote: "Preliminary"},
		},
		{
			name: "components",
			obs: fhir.Observation{
				ID: "bp1", Status: "final", Code: fhir.Concept{Text: "Blood pressure"}, Effective: at,
				Components: []fhir.Component{
					{
						Code:           fhir.Concept{Text: "Systolic"},
						Value:          qty("150", "mm[Hg]"),
						Ranges:         []fhir.Range{{Low: &fhir.Quantity{ValueText: "90"}, High: &fhir.Quantity{ValueText: "120"}}},
						Interpretation: interp("HH"),
					},
					{
						Code:   fhir.Concept{Text: "Diastolic"},
						Absent: &fhir.Concept{Codings: []fhir.Coding{{Code: "not-performed"}}},
					},
				},
			},
			want: labs.Row{
				ID: "bp1", Name: "Blood pressure", Collected: "2024-03-05 20:07", CollectedISO: "2024-03-05T20:07:00Z", Status: "final",
				Components: []labs.Component{
					{Name: "Systolic", Value: "150", Unit: "mm[Hg]", Range: "90–120", Flag: labs.FlagCriticalHigh, FlagText: "Critical high"},
					{Name: "Diastolic", Absent: "Not performed"},
				},
			},
		},
		{
			name: "absent with text",
			obs: fhir.Observation{
				ID: "a1", Status: "final", Code: fhir.Concept{Text: "Potassium"}, Effective: at,
				Absent: &fhir.Concept{Text: "Specimen hemolyzed", Codings: []fhir.Coding{{Code: "error"}}},
			},
			want: labs.Row{ID: "a1", Name: "Potassium", Absent: "Specimen hemolyzed", Collected: "2024-03-05 20:07", CollectedISO: "2024-03-05T20:07:00Z", Status: "final"},
		},
		{
			name: "absent code in words clears a value",
			obs: fhir.Observation{
				ID: "a2", Status: "cancelled", Code: fhir.Concept{Text: "Sodium"},
				Value:  qty("140", "mmol/L"),
				Absent: &fhir.Concept{Codings: []fhir.Coding{{Code: "not-performed"}}},
			},
			want: labs.Row{ID: "a2", Name: "Sodium", Absent: "Not performed", Status: "cancelled", StatusNote: "Cancelled"},
		},
		{
			name: "corrected",
			obs: fhir.Observation{
				ID: "k2", Status: "corrected", Code: fhir.Concept{Text: "Potassium"}, Effective: at,
				Value: qty("3.1", "mmol/L"), Interpretation: interp("L"),
			},
			want: labs.Row{ID: "k2", Name: "Potassium", Value: "3.1", Unit: "mmol/L", Flag: labs.FlagLow, FlagText: "Low", Collected: "2024-03-05 20:07", CollectedISO: "2024-03-05T20:07:00Z", Status: "corrected", StatusNote: "Corrected"},
		},
		{
			name: "amended without time",
			obs: fhir.Observation{
				ID: "p1", Status: "amended", Code: fhir.Concept{Text: "Creatinine clearance"},
				Value: qty("95", "mL/min"), Ranges: []fhir.Range{{Low: &fhir.Quantity{ValueText: "90", Unit: "mL/min"}}},
			},
			want: labs.Row{ID: "p1", Name: "Creatinine clearance", Value: "95", Unit: "mL/min", Range: "≥ 90", Status: "amended", StatusNote: "Amended"},
		},
		{
			name: "no value at all",
			obs:  fhir.Observation{ID: "n1", Status: "registered", Code: fhir.Concept{Text: "Culture"}},
			want: labs.Row{ID: "n1", Name: "Culture", Status: "registered", StatusNote: "Registered"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Rows([]fhir.Observation{tt.obs}, time.UTC)
			if diff := cmp.Diff([]labs.Row{tt.want}, got); diff != "" {
				t.Errorf("Rows mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRangeText(t *testing.T) {
	q := func(s string) *fhir.Quantity { return &fhir.Quantity{ValueText: s, Unit: "mmol/L"} }
	tests := []struct {
		name   string
		ranges []fhir.Range
		want   string
	}{
		{"both", []fhir.Range{{Low: q("3.5"), High: q("5.1")}}, "3.5–5.1"},
		{"low only", []fhir.Range{{Low: q("40")}}, "≥ 40"},
		{"high only", []fhir.Range{{High: q("200")}}, "≤ 200"},
		{"text only", []fhir.Range{{Text: "<150"}}, "<150"},
		{"bounds win over text", []fhir.Range{{Low: q("1"), High: q("2"), Text: "1-2 mmol/L"}}, "1–2"},
		{"empty bound falls back to text", []fhir.Range{{Low: &fhir.Quantity{Unit: "g"}, Text: "Negative"}}, "Negative"},
		{"first range", []fhir.Range{{Low: q("1"), High: q("2")}, {Low: q("3"), High: q("4")}}, "1–2"},
		{"number without text", []fhir.Range{{Low: &fhir.Quantity{Value: 0.25}}}, "≥ 0.25"},
		{"none", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := rangeText(tt.ranges); got != tt.want {
				t.Errorf("rangeText = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestFlags(t *testing.T) {
	tests := []struct {
		interp   []fhir.Concept
		wantFlag labs.Flag
		wantText string
	}{
		{interp("H"), labs.FlagHigh, "High"},
		{interp("L"), labs.FlagLow, "Low"},
		{interp("HH"), labs.FlagCriticalHigh, "Critical high"},
		{interp("LL"), labs.FlagCriticalLow, "Critical low"},
		{interp("A"), labs.FlagAbnormal, "Abnormal"},
		{interp("AA"), labs.FlagCriticalOther, "Critical abnormal"},
		{interp("N"), labs.FlagNone, ""},
		{interp("h"), labs.FlagNone, ""},
		{nil, labs.FlagNone, ""},
		{[]fhir.Concept{{Text: "High"}}, labs.FlagNone, ""},
		{[]fhir.Concept{{Codings: []fhir.Coding{{Code: "X"}, {Code: "LL"}}}}, labs.FlagCriticalLow, "Critical low"},
	}
	for _, tt := range tests {
		name := "none"
		if len(tt.interp) > 0 && len(tt.interp[0].Codings) > 0 {
			name = tt.interp[0].Codings[0].Code
		}
		t.Run(name, func(t *testing.T) {
			f, text := flag(tt.interp)
			if f != tt.wantFlag || text != tt.wantText {
				t.Errorf("flag = %q %q, want %q %q", f, text, tt.wantFlag, tt.wantText)
			}
		})
	}
}

func TestRowsOrderAndFilter(t *testing.T) {
	obs := []fhir.Observation{
		{ID: "old", Status: "final", Code: fhir.Concept{Text: "Sodium"}, Effective: mustTime(t, "2023-01-01T10:00:00Z")},
		{ID: "none", Status: "final", Code: fhir.Concept{Text: "Aardvark"}},
		{ID: "new-b", Status: "final", Code: fhir.Concept{Text: "Potassium"}, Effective: mustTime(t, "2024-03-05T14:07:00Z")},
		{ID: "eie", Status: "entered-in-error", Code: fhir.Concept{Text: "Chloride"}, Effective: mustTime(t, "2025-01-01T00:00:00Z")},
		{ID: "new-a", Status: "final", Code: fhir.Concept{Text: "Glucose"}, Effective: mustTime(t, "2024-03-05T08:07:00-06:00")},
		{ID: "new-a2", Status: "final", Code: fhir.Concept{Text: "Glucose"}, Effective: mustTime(t, "2024-03-05T14:07:00Z")},
		{ID: "mid", Status: "final", Code: fhir.Concept{Text: "Zinc"}, Effective: mustTime(t, "2024-01-01T00:00:00Z")},
	}
	var got []string
	for _, r := range Rows(obs, time.UTC) {
		got = append(got, r.ID)
	}
	// Same instant: by name, then in the order received.
	want := []string{"new-a", "new-a2", "new-b", "mid", "old", "none"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("order mismatch (-want +got):\n%s", diff)
	}
	if rows := Rows(nil, nil); len(rows) != 0 {
		t.Errorf("Rows(nil) = %v", rows)
	}
}

func TestCollectedTimeZone(t *testing.T) {
	chicago := mustLoadLocation(t, "America/Chicago")
	tests := []struct {
		name          string
		effective     string
		dateOnly      bool
		loc           *time.Location
		wantCollected string
		wantISO       string
	}{
		{"UTC to Chicago, standard time", "2024-03-05T20:07:00Z", false, chicago, "2024-03-05 14:07", "2024-03-05T14:07:00-06:00"},
		{"crosses midnight", "2024-03-06T03:30:00Z", false, chicago, "2024-03-05 21:30", "2024-03-05T21:30:00-06:00"},
		{"daylight time", "2024-07-04T17:00:00+02:00", false, chicago, "2024-07-04 10:00", "2024-07-04T10:00:00-05:00"},
		{"nil location is UTC", "2024-03-05T14:07:00-06:00", false, nil, "2024-03-05 20:07", "2024-03-05T20:07:00Z"},
		{"date only is not shifted", "2024-03-05T00:00:00Z", true, chicago, "2024-03-05", "2024-03-05"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := fhir.Observation{ID: "x", Status: "final", Effective: mustTime(t, tt.effective), EffectiveDateOnly: tt.dateOnly}
			r := Rows([]fhir.Observation{o}, tt.loc)[0]
			if r.Collected != tt.wantCollected || r.CollectedISO != tt.wantISO {
				t.Errorf("Collected = %q %q, want %q %q", r.Collected, r.CollectedISO, tt.wantCollected, tt.wantISO)
			}
		})
	}
}

func TestBanner(t *testing.T) {
	tests := []struct {
		name string
		p    *fhir.Patient
		want *labs.Banner
	}{
		{"nil", nil, nil},
		{
			"female with MRN",
			&fhir.Patient{ID: "p1", Name: "Lopez, Camila", BirthDate: "1987-09-12", Gender: "female", MRN: "203713"},
			&labs.Banner{Name: "Lopez, Camila", BirthDate: "1987-09-12", Sex: "Female", MRN: "203713"},
		},
		{"male", &fhir.Patient{Name: "Doe, John", BirthDate: "1975-03-02", Gender: "male"}, &labs.Banner{Name: "Doe, John", BirthDate: "1975-03-02", Sex: "Male"}},
		{"other, partial date", &fhir.Patient{BirthDate: "1975", Gender: "other"}, &labs.Banner{BirthDate: "1975", Sex: "Other"}},
		{"unknown", &fhir.Patient{Gender: "unknown"}, &labs.Banner{Sex: "Unknown"}},
		{"absent", &fhir.Patient{}, &labs.Banner{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, Banner(tt.p)); diff != "" {
				t.Errorf("Banner mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNotices(t *testing.T) {
	restricted := fhir.Outcome{Code: "4130", Level: fhir.LevelWarning, Message: "Part of this record is restricted.", Incomplete: true}
	moreData := fhir.Outcome{Code: "4119", Level: fhir.LevelWarning, Message: "More data may exist."}
	noResults := fhir.Outcome{Code: "4101", Level: fhir.LevelInfo, Message: "No lab results."}
	noAPI := fhir.Outcome{Code: "59204", Level: fhir.LevelError, Message: "No access to lab results."}
	fail := func(kind fhir.ErrorKind) error {
		return &fhir.Error{Kind: kind, Public: "public " + string(kind), Err: errors.New("cause")}
	}
	tests := []struct {
		name string
		res  *fhir.LabsResult
		want []labs.Notice
	}{
		{"nil", nil, nil},
		{"complete, nothing to say", &fhir.LabsResult{Pages: 1}, nil},
		{
			"outcomes in order",
			&fhir.LabsResult{Outcomes: []fhir.Outcome{noResults, moreData}},
			[]labs.Notice{{Level: labs.NoticeInfo, Text: "No lab results."}, {Level: labs.NoticeWarning, Text: "More data may exist."}},
		},
		{
			"timeout on a page",
			&fhir.LabsResult{Incomplete: true, Err: fail(fhir.KindTimeout)},
			[]labs.Notice{{Level: labs.NoticeError, Text: "This list is incomplete: the EHR did not answer in time. Refresh to try again."}},
		},
		{
			"upstream error then outcomes",
			&fhir.LabsResult{Incomplete: true, Err: fail(fhir.KindUpstream), Outcomes: []fhir.Outcome{moreData}},
			[]labs.Notice{
				{Level: labs.NoticeError, Text: "This list is incomplete: the EHR had a problem sending every page of results. Refresh to try again."},
				{Level: labs.NoticeWarning, Text: "More data may exist."},
			},
		},
		{
			"forbidden with 59204",
			&fhir.LabsResult{Incomplete: true, Err: fail(fhir.KindForbidden), Outcomes: []fhir.Outcome{noAPI}},
			[]labs.Notice{
				{Level: labs.NoticeError, Text: "This list is incomplete: the EHR refused access to some results."},
				{Level: labs.NoticeError, Text: "No access to lab results."},
			},
		},
		{
			"restricted record",
			&fhir.LabsResult{Incomplete: true, Outcomes: []fhir.Outcome{moreData, restricted}},
			[]labs.Notice{
				{Level: labs.NoticeWarning, Text: "This list is incomplete: Part of this record is restricted."},
				{Level: labs.NoticeWarning, Text: "More data may exist."},
			},
		},
		{
			"incomplete without reason",
			&fhir.LabsResult{Incomplete: true},
			[]labs.Notice{{Level: labs.NoticeWarning, Text: "This list is incomplete: the EHR did not send every result."}},
		},
		{
			"untyped error",
			&fhir.LabsResult{Incomplete: true, Err: errors.New("x")},
			[]labs.Notice{{Level: labs.NoticeError, Text: "This list is incomplete: some results could not be fetched. Refresh to try again."}},
		},
		{
			"wrong patient shows only the error",
			&fhir.LabsResult{Incomplete: true, Err: fail(fhir.KindWrongPatient), Outcomes: []fhir.Outcome{moreData}},
			[]labs.Notice{{Level: labs.NoticeError, Text: "public wrong_patient"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, Notices(tt.res)); diff != "" {
				t.Errorf("Notices mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestStatusNote(t *testing.T) {
	tests := map[string]string{
		"final": "", "": "", "preliminary": "Preliminary", "corrected": "Corrected",
		"amended": "Amended", "cancelled": "Cancelled", "registered": "Registered", "unknown": "Status unknown",
	}
	for status, want := range tests {
		if got := statusNote(status); got != want {
			t.Errorf("statusNote(%q) = %q, want %q", status, got, want)
		}
	}
}
