package labsview

import (
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"smartlabs/components/labs"
	"smartlabs/server/fhir"
)

// num is a quantity value as a FHIR server sends it.
func num(text, unit string) fhir.Value {
	v, _ := strconv.ParseFloat(text, 64)
	return fhir.Value{Kind: fhir.ValueQuantity, Quantity: fhir.Quantity{Value: v, ValueText: text, Unit: unit}}
}

func bound(text string) *fhir.Quantity {
	v, _ := strconv.ParseFloat(text, 64)
	return &fhir.Quantity{Value: v, ValueText: text}
}

// obsAt is a LOINC-coded quantity result with a 3.5–5.1 range.
func obsAt(id, loinc, name, value string, at time.Time, flag string) fhir.Observation {
	o := fhir.Observation{
		ID: id, Status: "final", Code: fhir.Concept{Text: name}, LOINC: loinc, Effective: at,
		Value:  num(value, "mmol/L"),
		Ranges: []fhir.Range{{Low: bound("3.5"), High: bound("5.1")}},
	}
	if flag != "" {
		o.Interpretation = interp(flag)
	}
	return o
}

func TestSummaryOf(t *testing.T) {
	day := func(d int) time.Time { return time.Date(2024, 3, d, 8, 0, 0, 0, time.UTC) }
	obs := []fhir.Observation{
		obsAt("k1", "2823-3", "Potassium", "4.1", day(1), ""),
		obsAt("k2", "2823-3", "Potassium", "5.40", day(3), "H"),
		obsAt("k3", "2823-3", "Potassium", "6.9", day(5), "HH"),
		obsAt("n1", "2951-2", "Sodium", "140", day(2), ""),
		obsAt("n2", "2951-2", "Sodium", "140", day(4), ""),
		{ID: "c1", Status: "final", Code: fhir.Concept{Text: "Urine culture"}, Effective: day(2),
			Value: fhir.Value{Kind: fhir.ValueCodeable, Concept: fhir.Concept{Text: "Negative"}}},
		{ID: "c2", Status: "final", Code: fhir.Concept{Text: "urine CULTURE"}, Effective: day(4),
			Value: fhir.Value{Kind: fhir.ValueCodeable, Concept: fhir.Concept{Text: "Positive"}}, Interpretation: interp("A")},
		{ID: "g1", Status: "final", Code: fhir.Concept{Text: "Glucose"}, LOINC: "2345-7", Effective: day(4), Absent: &fhir.Concept{Text: "Not performed"}},
	}
	rs := Results(obs, time.UTC)
	s := SummaryOf(rs, labs.Filter{}, "/l/L")

	if len(s.Pinned) != 1 || s.Pinned[0].Key != "2823-3" {
		t.Fatalf("pinned = %+v, want potassium only", s.Pinned)
	}
	k := s.Pinned[0]
	if k.Latest.Value != "6.9" || k.Previous == nil || k.Previous.Value != "5.40" || k.Delta != "+1.50" || k.Dir != labs.DirUp || k.Count != 3 {
		t.Errorf("potassium line: latest %q prev %v delta %q dir %q count %d", k.Latest.Value, k.Previous, k.Delta, k.Dir, k.Count)
	}
	var spark []string
	for _, p := range k.Spark.Points {
		spark = append(spark, p.Text+"@"+p.At.Format("02")+":"+string(p.Flag))
	}
	if diff := cmp.Diff([]string{"4.1@01:", "5.40@03:H", "6.9@05:HH"}, spark); diff != "" {
		t.Errorf("sparkline points, oldest first (-want +got):\n%s", diff)
	}
	if k.Spark.Low == nil || *k.Spark.Low != 3.5 || k.Spark.High == nil || *k.Spark.High != 5.1 {
		t.Errorf("sparkline band = %v..%v", k.Spark.Low, k.Spark.High)
	}
	if k.URL != "/l/L/a/2823-3" {
		t.Errorf("URL = %q", k.URL)
	}

	if len(s.Groups) != 1 {
		t.Fatalf("groups = %d, want 1 (no panels)", len(s.Groups))
	}
	var names []string
	lines := map[string]labs.AnalyteLine{}
	for _, a := range s.Groups[0].Lines {
		names = append(names, a.Name)
		lines[a.Name] = a
	}
	// Newest first by latest result, then by name; the culture's two spellings are one analyte.
	if diff := cmp.Diff([]string{"Glucose", "Sodium", "urine CULTURE"}, names); diff != "" {
		t.Errorf("lines (-want +got):\n%s", diff)
	}
	if na := lines["Sodium"]; na.Delta != "0" || na.Dir != labs.DirSame {
		t.Errorf("sodium delta %q %q, want 0 same", na.Delta, na.Dir)
	}
	if c := lines["urine CULTURE"]; c.Latest.Value != "Positive" || c.Delta != "" || c.Previous.Value != "Negative" || len(c.Spark.Points) != 0 {
		t.Errorf("culture line = %+v", c)
	}
	if g := lines["Glucose"]; g.Latest.Absent != "Not performed" || g.Previous != nil {
		t.Errorf("glucose line = %+v", g)
	}

	// Abnormal only keeps analytes whose latest result is flagged; by name sorts lines.
	s = SummaryOf(rs, labs.Filter{Abnormal: true, Sort: "name"}, "/l/L")
	names = nil
	for _, g := range s.Groups {
		for _, a := range g.Lines {
			names = append(names, a.Name)
		}
	}
	if len(s.Pinned) != 1 || !cmp.Equal(names, []string{"urine CULTURE"}) {
		t.Errorf("abnormal only: pinned %d, lines %v", len(s.Pinned), names)
	}
}

func TestSummaryPanels(t *testing.T) {
	at := time.Date(2024, 3, 1, 8, 0, 0, 0, time.UTC)
	obs := []fhir.Observation{
		{ID: "p1", Status: "final", Code: fhir.Concept{Text: "Basic metabolic panel"}, Effective: at,
			HasMember: []string{"Observation/k1", "Observation/n1"}},
		obsAt("k1", "2823-3", "Potassium", "4.1", at, ""),
		obsAt("n1", "2951-2", "Sodium", "140", at, ""),
		func() fhir.Observation {
			o := obsAt("d1", "1234-5", "Anion gap", "9", at, "")
			o.DerivedFrom = []string{"Observation/p1"}
			return o
		}(),
		obsAt("x1", "718-7", "Hemoglobin", "13", at, ""),
	}
	s := SummaryOf(Results(obs, time.UTC), labs.Filter{Sort: "name"}, "/l/L")
	got := map[string][]string{}
	for _, g := range s.Groups {
		for _, a := range g.Lines {
			got[g.Name] = append(got[g.Name], a.Name)
		}
	}
	want := map[string][]string{"Basic metabolic panel": {"Anion gap", "Potassium", "Sodium"}, "": {"Hemoglobin"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("panels (-want +got):\n%s", diff)
	}
	if s.Groups[len(s.Groups)-1].Name != "" {
		t.Error("ungrouped results are not listed last")
	}
}

func TestApplyFilter(t *testing.T) {
	now := time.Date(2024, 6, 30, 12, 0, 0, 0, time.UTC)
	obs := []fhir.Observation{
		obsAt("a", "2823-3", "Potassium", "4.1", now.AddDate(0, 0, -2), ""),
		obsAt("b", "2823-3", "Potassium", "5.4", now.AddDate(0, 0, -20), "H"),
		obsAt("c", "2951-2", "Sodium", "140", now.AddDate(0, -6, 0), ""),
		obsAt("d", "2951-2", "Sodium", "150", now.AddDate(-2, 0, 0), "H"),
		{ID: "e", Status: "final", Code: fhir.Concept{Text: "No date"}, Value: num("1", "")},
	}
	obs[2].Status = "corrected"
	rs := Results(obs, time.UTC)
	ids := func(f labs.Filter) []string {
		var out []string
		for _, r := range Apply(rs, f, now, true) {
			out = append(out, r.Row.ID)
		}
		return out
	}
	tests := []struct {
		name string
		f    labs.Filter
		want []string
	}{
		{"all", labs.Filter{}, []string{"a", "b", "c", "d", "e"}},
		{"7 days", labs.Filter{Range: "7d"}, []string{"a"}},
		{"30 days", labs.Filter{Range: "30d"}, []string{"a", "b"}},
		{"1 year", labs.Filter{Range: "1y"}, []string{"a", "b", "c"}},
		{"search, any case", labs.Filter{Query: "SOD"}, []string{"c", "d"}},
		{"search by LOINC", labs.Filter{Query: "2823"}, []string{"a", "b"}},
		{"abnormal", labs.Filter{Abnormal: true}, []string{"b", "d"}},
		{"status", labs.Filter{Status: "corrected"}, []string{"c"}},
		{"by name", labs.Filter{Sort: "name"}, []string{"e", "a", "b", "c", "d"}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, ids(tt.f)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, diff)
		}
	}
	if diff := cmp.Diff([]string{"final", "corrected"}, Statuses(rs)); diff != "" {
		t.Errorf("statuses (-want +got):\n%s", diff)
	}
}

func TestParseFilter(t *testing.T) {
	long := ""
	for range 150 {
		long += "é"
	}
	tests := []struct {
		query string
		want  labs.Filter
		mode  labs.Mode
	}{
		{"", labs.Filter{}, labs.ModeSummary},
		{"range=30d&q=+gluc+&abnormal=1&status=final&sort=name&view=all",
			labs.Filter{Range: "30d", Query: "gluc", Abnormal: true, Status: "final", Sort: "name"}, labs.ModeList},
		{"range=5y&status=%3Cscript%3E&sort=evil&abnormal=yes&view=x", labs.Filter{}, labs.ModeSummary},
		{"q=" + url.QueryEscape(long), labs.Filter{Query: long[:200]}, labs.ModeSummary},
	}
	for _, tt := range tests {
		q, _ := url.ParseQuery(tt.query)
		if diff := cmp.Diff(tt.want, ParseFilter(q)); diff != "" {
			t.Errorf("%q (-want +got):\n%s", tt.query, diff)
		}
		if got := ParseMode(q); got != tt.mode {
			t.Errorf("%q: mode %v, want %v", tt.query, got, tt.mode)
		}
		// The filter survives a round trip through its own URL.
		f := ParseFilter(q)
		if diff := cmp.Diff(f, ParseFilter(f.Values())); diff != "" {
			t.Errorf("%q: round trip (-want +got):\n%s", tt.query, diff)
		}
	}
}

func TestAnalyteOf(t *testing.T) {
	day := func(d int) time.Time { return time.Date(2024, 3, d, 8, 0, 0, 0, time.UTC) }
	obs := []fhir.Observation{
		obsAt("k1", "2823-3", "Potassium", "4.1", day(1), ""),
		obsAt("k2", "2823-3", "Potassium", "<3.0", day(2), "L"),
		obsAt("k3", "2823-3", "Potassium", "6.9", day(3), "HH"),
		obsAt("n1", "2951-2", "Sodium", "140", day(2), ""),
	}
	obs[1].Value = fhir.Value{Kind: fhir.ValueQuantity, Quantity: fhir.Quantity{Value: 3, ValueText: "3.0", Comparator: "<", Unit: "mmol/L"}}
	f := labs.Filter{Range: "30d"}
	a := AnalyteOf(Results(obs, time.UTC), "2823-3", "/l/L", labs.ModeList, f)
	if a == nil {
		t.Fatal("no analyte")
	}
	var rows, points []string
	for _, r := range a.Rows {
		rows = append(rows, r.ID)
	}
	for _, p := range a.Chart.Points {
		points = append(points, p.Text)
	}
	// Every result is in the table, newest first; only plain numbers are charted, oldest first.
	if diff := cmp.Diff([]string{"k3", "k2", "k1"}, rows); diff != "" {
		t.Errorf("rows (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"4.1", "6.9"}, points); diff != "" {
		t.Errorf("chart points (-want +got):\n%s", diff)
	}
	if a.BackURL != "/l/L?range=30d&view=all" || a.Unit != "mmol/L" || a.Range != "3.5–5.1" {
		t.Errorf("back %q unit %q range %q", a.BackURL, a.Unit, a.Range)
	}
	if AnalyteOf(Results(obs, time.UTC), "9999-9", "/l/L", labs.ModeSummary, f) != nil {
		t.Error("unknown key gave an analyte")
	}
}

func TestAnalyteKeyIsURLSafe(t *testing.T) {
	for _, o := range []fhir.Observation{
		{Code: fhir.Concept{Text: "../../etc <script>"}},
		{LOINC: "not a loinc/../", Code: fhir.Concept{Text: "X"}},
	} {
		k := analyteKey(&o)
		if len(k) != 17 || k[0] != 'n' {
			t.Errorf("key %q is not a hashed name key", k)
		}
	}
}

// TestNotesKept: a result's notes reach its row as sent, in the list, the
// summary's latest result and the drill-down.
func TestNotesKept(t *testing.T) {
	at := time.Date(2026, 11, 1, 8, 0, 0, 0, time.UTC)
	o := obsAt("g1", "2345-7", "Glucose", "128", at, "")
	o.Notes = []string{"PATIENT WAS NOT FASTING", "line one\nline two"}
	rs := Results([]fhir.Observation{o}, time.UTC)
	want := []string{"PATIENT WAS NOT FASTING", "line one\nline two"}
	s := SummaryOf(rs, labs.Filter{}, "/l/L")
	a := AnalyteOf(rs, "2345-7", "/l/L", labs.ModeSummary, labs.Filter{})
	for what, got := range map[string][]string{
		"list":       RowsOf(rs)[0].Notes,
		"summary":    s.Groups[0].Lines[0].Latest.Notes,
		"drill-down": a.Rows[0].Notes,
	} {
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s notes (-want +got):\n%s", what, diff)
		}
	}
}

// TestTestIdentity: a test is keyed by the organisation's Epic component
// code, else LOINC, else its name; its drill-down lists every code and unit
// the key brings together.
func TestTestIdentity(t *testing.T) {
	at := time.Date(2026, 11, 1, 8, 0, 0, 0, time.UTC)
	comp := func(system, code string) fhir.Coding { return fhir.Coding{System: system, Code: code} }
	org := "urn:oid:1.2.840.114350.1.13.501.2.7.2.768282"
	other := "urn:oid:1.2.840.114350.1.13.9.1.7.2.768282"
	loinc := func(code string) fhir.Coding { return fhir.Coding{System: loincSystem, Code: code} }
	mk := func(id, value, unit string, codings ...fhir.Coding) fhir.Observation {
		o := obsAt(id, "", "Potassium", value, at.Add(time.Duration(len(id))*time.Hour), "")
		o.Code.Codings = codings
		for _, c := range codings {
			if c.System == loincSystem {
				o.LOINC = c.Code
			}
		}
		o.Value.Quantity.Unit = unit
		return o
	}
	tests := []struct {
		name string
		obs  fhir.Observation
		key  string
	}{
		{"component and LOINC", mk("a", "4.1", "mmol/L", comp(org, "1520"), loinc("2823-3")), "c501-2-1520"},
		{"component, LOINC second", mk("b", "4.2", "meq/L", loinc("6298-4"), comp(org, "1520")), "c501-2-1520"},
		{"component only", mk("c", "4.3", "mmol/L", comp(org, "1520")), "c501-2-1520"},
		{"another organisation's component", mk("d", "4.4", "mmol/L", comp(other, "1520")), "c9-1-1520"},
		{"LOINC only", mk("e", "4.5", "mmol/L", loinc("2823-3")), "2823-3"},
		{"other code system", mk("f", "4.6", "mmol/L", comp("urn:oid:1.2.840.114350.1.13.501.2.7.5.737384.99", "1520")), "n" + nameHash("Potassium")},
		{"component with other characters", mk("g", "4.7", "mmol/L", comp(org, "15.20/../x")), ""},
	}
	var obs []fhir.Observation
	for _, tt := range tests {
		obs = append(obs, tt.obs)
		t.Run(tt.name, func(t *testing.T) {
			k := analyteKey(&tt.obs)
			if tt.key == "" {
				if len(k) != 17 || k[0] != 'k' || strings.ContainsAny(k, "./%") {
					t.Errorf("key %q, want k and a hash", k)
				}
				return
			}
			if k != tt.key {
				t.Errorf("key %q, want %q", k, tt.key)
			}
		})
	}
	a := AnalyteOf(Results(obs, time.UTC), "c501-2-1520", "/l/L", labs.ModeSummary, labs.Filter{})
	if a == nil || len(a.Rows) != 3 {
		t.Fatalf("drill-down %+v", a)
	}
	if diff := cmp.Diff([]string{"Epic component 1520", "LOINC 2823-3", "LOINC 6298-4"}, a.Codes); diff != "" {
		t.Errorf("codes (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"mmol/L", "meq/L"}, a.Units); diff != "" {
		t.Errorf("units (-want +got):\n%s", diff)
	}

	// One result names at most maxCodes of its codes, the first ones.
	many := mk("h", "4.8", "mmol/L", comp(org, "1520"), loinc("2823-3"), loinc("1001-1"), loinc("1002-2"), loinc("1003-3"), loinc("1004-4"), loinc("1005-5"))
	a = AnalyteOf(Results([]fhir.Observation{many}, time.UTC), "c501-2-1520", "/l/L", labs.ModeSummary, labs.Filter{})
	if a == nil {
		t.Fatal("no drill-down for a result with many codes")
	}
	if diff := cmp.Diff([]string{"Epic component 1520", "LOINC 2823-3", "LOINC 1001-1", "LOINC 1002-2"}, a.Codes); diff != "" {
		t.Errorf("codes of a result with %d codes (-want +got):\n%s", len(many.Code.Codings), diff)
	}
}

// nameHash is the hash part of a name key.
func nameHash(name string) string {
	o := fhir.Observation{Code: fhir.Concept{Text: name}}
	return analyteKey(&o)[1:]
}

// TestDetailsKept: the specimen and performing lab come from the references'
// display (an Organization first), the resulted time from issued, formatted
// for the drill-down.
func TestDetailsKept(t *testing.T) {
	chicago := mustLoadLocation(t, "America/Chicago")
	o := obsAt("g1", "2345-7", "Glucose", "128", time.Date(2026, 11, 1, 13, 40, 0, 0, time.UTC), "")
	o.Issued = time.Date(2026, 11, 1, 15, 55, 0, 0, time.UTC)
	o.Specimen = fhir.Reference{Reference: "Specimen/1", Display: "Blood"}
	o.Performers = []fhir.Reference{{Reference: "Practitioner/9", Display: "Dr. Who"}, {Reference: "Organization/2", Display: "Riverside Core Laboratory"}}
	r := AnalyteOf(Results([]fhir.Observation{o}, chicago), "2345-7", "/l/L", labs.ModeSummary, labs.Filter{}).Rows[0]
	got := [5]string{r.Specimen, r.Performer, r.Collected, r.Issued, r.IssuedISO}
	want := [5]string{"Blood", "Riverside Core Laboratory", "2026-11-01 07:40", "2026-11-01 09:55", "2026-11-01T09:55:00-06:00"}
	if got != want {
		t.Errorf("details %q, want %q", got, want)
	}
	o.Performers = o.Performers[:1]
	o.Issued = time.Time{}
	r = AnalyteOf(Results([]fhir.Observation{o}, chicago), "2345-7", "/l/L", labs.ModeSummary, labs.Filter{}).Rows[0]
	if r.Performer != "Dr. Who" || r.Issued != "" || r.IssuedISO != "" {
		t.Errorf("performer %q issued %q", r.Performer, r.Issued)
	}
}
