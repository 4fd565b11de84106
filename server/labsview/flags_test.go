package labsview

import (
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"smartlabs/components/labs"
	"smartlabs/server/fhir"
)

// ucum is a UCUM-coded quantity as Epic sends one.
func ucum(text, code string) *fhir.Quantity {
	v, _ := strconv.ParseFloat(text, 64)
	return &fhir.Quantity{Value: v, ValueText: text, Unit: code, System: ucumSystem, Code: code}
}

// years is an age bound in years.
func years(n string) *fhir.Quantity { return ucum(n, "a") }

var (
	female = fhir.Concept{Codings: []fhir.Coding{{System: snomedSystem, Code: "248152002", Display: "Female"}}}
	male   = fhir.Concept{Codings: []fhir.Coding{{System: genderSystem, Code: "male"}}}
)

// normalRange is a UCUM-coded low–high range; "" leaves a side open.
func normalRange(low, high, unit string) fhir.Range {
	r := fhir.Range{Text: low + " - " + high + " " + unit}
	if low != "" {
		r.Low = ucum(low, unit)
	}
	if high != "" {
		r.High = ucum(high, unit)
	}
	return r
}

// potassium is a result without interpretation collected at at.
func potassium(value string, at time.Time, ranges ...fhir.Range) fhir.Observation {
	q := ucum(value, "mmol/L")
	return fhir.Observation{
		ID: "k", Status: "final", Code: fhir.Concept{Text: "Potassium"}, Effective: at,
		Value: fhir.Value{Kind: fhir.ValueQuantity, Quantity: *q}, Ranges: ranges,
	}
}

// TestComputedFlags: a flag is computed from the one reference range that
// applies when the lab sent none, and in every doubtful case none is.
func TestComputedFlags(t *testing.T) {
	at := time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)
	woman := Subject{Sex: "female", Birth: time.Date(1968, 4, 9, 0, 0, 0, 0, time.UTC)}
	k := normalRange("3.5", "5.1", "mmol/L")
	typed := func(r fhir.Range, code string) fhir.Range {
		r.Type = &fhir.Concept{Codings: []fhir.Coding{{System: rangeMeaningSystem, Code: code}}}
		return r
	}
	forSex := func(r fhir.Range, c fhir.Concept) fhir.Range { r.AppliesTo = []fhir.Concept{c}; return r }
	aged := func(r fhir.Range, low, high *fhir.Quantity) fhir.Range { r.AgeLow, r.AgeHigh = low, high; return r }
	type want struct {
		Flag       labs.Flag
		Text, Hint string
		Range      string
	}
	tests := []struct {
		name string
		obs  fhir.Observation
		subj Subject
		want want
	}{
		{"above the range", potassium("5.6", at, k), woman, want{labs.FlagHigh, "High", "outside 3.5–5.1", "3.5–5.1"}},
		{"below the range", potassium("3.1", at, k), woman, want{labs.FlagLow, "Low", "outside 3.5–5.1", "3.5–5.1"}},
		{"within", potassium("4.2", at, k), woman, want{Range: "3.5–5.1"}},
		{"on the bounds", potassium("5.10", at, k), woman, want{Range: "3.5–5.1"}},
		{"type normal", potassium("5.6", at, typed(k, "normal")), woman, want{labs.FlagHigh, "High", "outside 3.5–5.1", "3.5–5.1"}},
		{"no patient needed", potassium("5.6", at, k), Subject{}, want{labs.FlagHigh, "High", "outside 3.5–5.1", "3.5–5.1"}},
		{"units differ", potassium("5.6", at, normalRange("3.5", "5.1", "meq/L")), woman, want{Range: "3.5–5.1"}},
		{"one bound's unit differs", func() fhir.Observation {
			r := k
			r.High = ucum("5.1", "mg/dL")
			return potassium("5.6", at, r)
		}(), woman, want{Range: "3.5–5.1"}},
		{"unit without UCUM system", func() fhir.Observation {
			o := potassium("5.6", at, k)
			o.Value.Quantity.System = ""
			return o
		}(), woman, want{Range: "3.5–5.1"}},
		{"a comparator", func() fhir.Observation {
			o := potassium("5.6", at, k)
			o.Value.Quantity.Comparator = ">"
			return o
		}(), woman, want{Range: "3.5–5.1"}},
		{"a bound with a comparator", func() fhir.Observation {
			r := k
			r.High = ucum("5.1", "mmol/L")
			r.High.Comparator = "<"
			return potassium("5.6", at, r)
		}(), woman, want{Range: "3.5–5.1"}},
		{"only low, below", potassium("45", at, normalRange("60", "", "mmol/L")), woman, want{labs.FlagLow, "Low", "below 60", "≥ 60"}},
		{"only low, above it", potassium("95", at, normalRange("60", "", "mmol/L")), woman, want{Range: "≥ 60"}},
		{"only high, above", potassium("250", at, normalRange("", "200", "mmol/L")), woman, want{labs.FlagHigh, "High", "above 200", "≤ 200"}},
		{"only high, below it", potassium("12", at, normalRange("", "200", "mmol/L")), woman, want{Range: "≤ 200"}},
		{"text-only range", potassium("5.6", at, fhir.Range{Text: "NR"}), woman, want{Range: "NR"}},
		{"text-only range beside a numeric one", potassium("5.6", at, fhir.Range{Text: "NR"}, k), woman, want{labs.FlagHigh, "High", "outside 3.5–5.1", "3.5–5.1"}},
		{"low above high", potassium("4.3", at, normalRange("5.1", "3.5", "mmol/L")), woman, want{Range: "5.1–3.5"}},
		{"not a normal range", potassium("5.6", at, typed(k, "treatment")), woman, want{Range: "3.5–5.1"}},
		{"a range for another sex", potassium("5.6", at, forSex(k, male)), woman, want{Range: "3.5–5.1"}},
		{"a range for the patient's sex", potassium("5.6", at, forSex(k, female)), woman, want{labs.FlagHigh, "High", "outside 3.5–5.1", "3.5–5.1"}},
		{"a range by sex, sex unknown", potassium("5.6", at, forSex(k, female)), Subject{Birth: woman.Birth}, want{Range: "3.5–5.1"}},
		{"appliesTo something else", potassium("5.6", at, forSex(k, fhir.Concept{Text: "Pregnant"})), woman, want{Range: "3.5–5.1"}},
		{"ranges by sex, the patient's picked", potassium("1.2", at,
			forSex(normalRange("0.7", "1.3", "mmol/L"), male),
			forSex(normalRange("0.5", "1.1", "mmol/L"), female)),
			woman, want{labs.FlagHigh, "High", "outside 0.5–1.1", "0.5–1.1"}},
		{"ranges by sex, for the other sex", potassium("1.2", at,
			forSex(normalRange("0.7", "1.3", "mmol/L"), male),
			forSex(normalRange("0.5", "1.1", "mmol/L"), female)),
			Subject{Sex: "male", Birth: woman.Birth}, want{Range: "0.7–1.3"}},
		{"a range for another age", potassium("5.6", at, aged(k, nil, years("17"))), woman, want{Range: "3.5–5.1"}},
		{"a range for the patient's age", potassium("5.6", at, aged(k, years("18"), nil)), woman, want{labs.FlagHigh, "High", "outside 3.5–5.1", "3.5–5.1"}},
		{"age the day before a birthday", potassium("5.6", time.Date(2026, 4, 8, 23, 0, 0, 0, time.UTC), aged(k, years("58"), nil)), woman, want{Range: "3.5–5.1"}},
		{"age on the birthday", potassium("5.6", time.Date(2026, 4, 9, 1, 0, 0, 0, time.UTC), aged(k, years("58"), nil)), woman, want{labs.FlagHigh, "High", "outside 3.5–5.1", "3.5–5.1"}},
		{"age, birth date unknown", potassium("5.6", at, aged(k, years("18"), nil)), Subject{Sex: "female"}, want{Range: "3.5–5.1"}},
		{"age in an unknown unit", potassium("5.6", at, aged(k, &fhir.Quantity{Value: 18, ValueText: "18", Unit: "years"}, nil)), woman, want{Range: "3.5–5.1"}},
		{"ranges by age, the patient's picked", potassium("160", at,
			aged(normalRange("100", "390", "mmol/L"), nil, years("17")),
			aged(normalRange("44", "147", "mmol/L"), years("18"), nil)),
			woman, want{labs.FlagHigh, "High", "outside 44–147", "44–147"}},
		{"several candidate ranges", potassium("5.6", at, k, normalRange("3.6", "5.2", "mmol/L")), woman, want{Range: "3.5–5.1"}},
		{"several by sex and none", potassium("5.6", at, k, forSex(normalRange("3.6", "5.2", "mmol/L"), female)), woman, want{Range: "3.5–5.1"}},
		{"a lab N against an out-of-range value", func() fhir.Observation {
			o := potassium("5.6", at, k)
			o.Interpretation = interp("N")
			return o
		}(), woman, want{Range: "3.5–5.1"}},
		{"a lab H wins, ranges by sex still picked", func() fhir.Observation {
			o := potassium("1.2", at, forSex(normalRange("0.7", "1.3", "mmol/L"), male), forSex(normalRange("0.5", "1.1", "mmol/L"), female))
			o.Interpretation = interp("H")
			return o
		}(), woman, want{labs.FlagHigh, "High", "", "0.5–1.1"}},
		{"a lab L wins", func() fhir.Observation {
			o := potassium("5.6", at, k)
			o.Interpretation = interp("L")
			return o
		}(), woman, want{labs.FlagLow, "Low", "", "3.5–5.1"}},
		{"an unknown lab code wins", func() fhir.Observation {
			o := potassium("5.6", at, k)
			o.Interpretation = interp("IND")
			return o
		}(), woman, want{Range: "3.5–5.1"}},
		{"beyond float range", potassium("1e400", at, k), woman, want{Range: "3.5–5.1"}},
		{"no value", func() fhir.Observation {
			o := potassium("5.6", at, k)
			o.Value, o.Absent = fhir.Value{}, &fhir.Concept{Text: "Not performed"}
			return o
		}(), woman, want{Range: "3.5–5.1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs := ForSubject(Results([]fhir.Observation{tt.obs}, time.UTC), tt.subj)
			if len(rs) != 1 {
				t.Fatalf("%d results", len(rs))
			}
			r := rs[0].Row
			got := want{r.Flag, r.FlagText, r.FlagHint, r.Range}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("flag (-want +got):\n%s", diff)
			}
		})
	}
}

// TestComputedFlagsInViews: a computed flag is the same in the summary, the
// list, the drill-down and the chart; it is never critical nor pinned, and
// "Abnormal only" keeps it. The cached results are never changed.
func TestComputedFlagsInViews(t *testing.T) {
	day := func(d int) time.Time { return time.Date(2026, 11, d, 8, 0, 0, 0, time.UTC) }
	woman := Subject{Sex: "female", Birth: time.Date(1968, 4, 9, 0, 0, 0, 0, time.UTC)}
	k := normalRange("3.5", "5.1", "mmol/L")
	hgb := func(v string, d int) fhir.Observation {
		o := potassium(v, day(d))
		o.ID, o.Code = "h"+strconv.Itoa(d), fhir.Concept{Text: "Hemoglobin"}
		o.Value.Quantity.Unit, o.Value.Quantity.Code = "g/dL", "g/dL"
		r1, r2 := normalRange("13.5", "17.5", "g/dL"), normalRange("12.0", "15.5", "g/dL")
		r1.AppliesTo, r2.AppliesTo = []fhir.Concept{male}, []fhir.Concept{female}
		o.Ranges = []fhir.Range{r1, r2}
		return o
	}
	k1, k2 := potassium("4.0", day(1), k), potassium("5.6", day(2), k)
	k1.ID, k2.ID = "k1", "k2"
	obs := []fhir.Observation{k1, k2, hgb("13.0", 1), hgb("11.6", 2),
		{ID: "na", Status: "final", Code: fhir.Concept{Text: "Sodium"}, Effective: day(2), Value: num("139", "mmol/L")}}
	cached := Results(obs, time.UTC)
	before := cmp.Diff(nil, cached, cmp.AllowUnexported(Result{}, refRange{}, ageBound{}))
	rs := ForSubject(cached, woman)
	if after := cmp.Diff(nil, cached, cmp.AllowUnexported(Result{}, refRange{}, ageBound{})); after != before {
		t.Fatal("ForSubject changed the cached results")
	}

	s := SummaryOf(Apply(rs, labs.Filter{Abnormal: true}, day(30), false), labs.Filter{Abnormal: true}, "/l/L")
	if len(s.Pinned) != 0 {
		t.Errorf("computed flags pinned: %+v", s.Pinned)
	}
	flags := map[string]string{}
	for _, g := range s.Groups {
		for _, a := range g.Lines {
			flags[a.Name] = string(a.Latest.Flag) + " " + a.Latest.FlagHint
			if !a.Abnormal() || a.Critical() {
				t.Errorf("%s: abnormal %v critical %v", a.Name, a.Abnormal(), a.Critical())
			}
			last := a.Spark.Points[len(a.Spark.Points)-1]
			if last.Flag != a.Latest.Flag || last.Hint != a.Latest.FlagHint {
				t.Errorf("%s: spark point %q %q, latest %q %q", a.Name, last.Flag, last.Hint, a.Latest.Flag, a.Latest.FlagHint)
			}
		}
	}
	wantFlags := map[string]string{"Potassium": "H outside 3.5–5.1", "Hemoglobin": "L outside 12.0–15.5"}
	if diff := cmp.Diff(wantFlags, flags); diff != "" {
		t.Errorf("abnormal-only summary (-want +got):\n%s", diff)
	}

	rows := RowsOf(Apply(rs, labs.Filter{Abnormal: true}, day(30), true))
	var ids []string
	for _, r := range rows {
		ids = append(ids, r.ID+" "+string(r.Flag))
	}
	if diff := cmp.Diff([]string{"h2 L", "k2 H"}, ids); diff != "" {
		t.Errorf("abnormal-only list (-want +got):\n%s", diff)
	}

	// Hemoglobin's band is the woman's range, and its points carry the rows' flags.
	a := AnalyteOf(rs, rs[0].Key, "/l/L", labs.ModeSummary, labs.Filter{})
	if a == nil || a.Name != "Hemoglobin" || len(a.Chart.Points) != 2 || len(a.Rows) != 2 {
		t.Fatalf("drill-down %+v", a)
	}
	for i, p := range a.Chart.Points {
		row := a.Rows[len(a.Rows)-1-i]
		if p.Flag != row.Flag || p.Hint != row.FlagHint {
			t.Errorf("chart point %d: %q %q, row %q %q", i, p.Flag, p.Hint, row.Flag, row.FlagHint)
		}
	}
	if a.Rows[0].FlagHint != "outside 12.0–15.5" || a.Rows[1].Flag != labs.FlagNone || a.Range != "12.0–15.5" ||
		a.Chart.Low == nil || *a.Chart.Low != 12 || *a.Chart.High != 15.5 {
		t.Errorf("drill-down rows %+v, range %q, band %v–%v", a.Rows, a.Range, a.Chart.Low, a.Chart.High)
	}
}

// TestSubjectOf reads sex and a full birth date; partial dates are unknown.
func TestSubjectOf(t *testing.T) {
	tests := []struct {
		p    *fhir.Patient
		want Subject
	}{
		{nil, Subject{}},
		{&fhir.Patient{Gender: "female", BirthDate: "1968-04-09"}, Subject{Sex: "female", Birth: time.Date(1968, 4, 9, 0, 0, 0, 0, time.UTC)}},
		{&fhir.Patient{Gender: "male", BirthDate: "1968"}, Subject{Sex: "male"}},
		{&fhir.Patient{BirthDate: "1968-04-31"}, Subject{}},
	}
	for _, tt := range tests {
		if got := SubjectOf(tt.p); got != tt.want {
			t.Errorf("SubjectOf(%+v) = %+v, want %+v", tt.p, got, tt.want)
		}
	}
}
