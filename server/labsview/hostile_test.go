package labsview

import (
	"math"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"smartlabs/components/labs"
	"smartlabs/server/fhir"
)

// decimal is a quantity value as the FHIR decoders give it for text.
func decimal(text, unit string) fhir.Value {
	v, unrep := fhir.ParseDecimal(text)
	return fhir.Value{Kind: fhir.ValueQuantity, Quantity: fhir.Quantity{Value: v, ValueText: text, Unrepresentable: unrep, Unit: unit}}
}

// decimalBound is a range limit as the FHIR decoders give it for text.
func decimalBound(text string) *fhir.Quantity {
	if text == "" {
		return nil
	}
	q := decimal(text, "").Quantity
	return &q
}

// hostileTexts are decimals as an EHR may send them: beyond float range both
// ways, at its ends, subnormal, one ulp apart, zero, and ordinary.
var hostileTexts = []string{
	"1e400", "-1e400", "1e-400", "1.7976931348623159e308",
	"1e308", "-1e308", "1.7976931348623157e308", "-1.7976931348623157e308",
	"5e-324", "-5e-324", "2.2250738585072014e-308",
	"0.3", "0.30000000000000004", "1", "1.0000000000000002", "0", "-0", "0.000",
	"1.5e-3", "1E+20", "123456789012345678901234567890", "5.40", "-12",
}

// hostileDates are collection times at the ends of a FHIR dateTime, the zero
// time (none sent), and ordinary ones, in two zones.
var hostileDates = []time.Time{
	{},
	time.Date(1, 1, 1, 0, 0, 1, 0, time.UTC),
	time.Date(1, 3, 4, 5, 6, 7, 0, time.FixedZone("", -5*3600)),
	time.Date(2024, 3, 1, 8, 0, 0, 0, time.UTC),
	time.Date(2024, 3, 1, 8, 0, 0, 0, time.UTC),
	time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
	time.Date(9999, 12, 31, 23, 0, 0, 0, time.FixedZone("", 14*3600)),
}

// hostileRanges are reference ranges as low/high texts: open, equal, reversed,
// beyond float range.
var hostileRanges = [][2]string{
	{"", ""}, {"3.5", "5.1"}, {"4", "4"}, {"5.1", "3.5"}, {"1e-400", "1e400"},
	{"-1e308", "1e308"}, {"0.3", "0.30000000000000004"}, {"", "1e400"}, {"5e-324", ""},
}

// hostileObservations are n results of one analyte cycling through every
// hostile value, date and range; every 7th value also arrives as a raw ±Inf
// or NaN, as a careless caller might build it.
func hostileObservations(n int) []fhir.Observation {
	raw := []float64{math.Inf(1), math.Inf(-1), math.NaN()}
	obs := make([]fhir.Observation, 0, n)
	for i := range n {
		text := hostileTexts[i%len(hostileTexts)]
		rg := hostileRanges[i%len(hostileRanges)]
		o := fhir.Observation{
			ID: "h" + strconv.Itoa(i), Status: "final", LOINC: "2823-3", Code: fhir.Concept{Text: "Potassium"},
			Effective: hostileDates[i%len(hostileDates)], EffectiveDateOnly: i%11 == 0,
			Value:  decimal(text, "mmol/L"),
			Ranges: []fhir.Range{{Low: decimalBound(rg[0]), High: decimalBound(rg[1])}},
		}
		if i%7 == 3 {
			o.Value.Quantity.Value = raw[i%len(raw)]
		}
		if i%5 == 0 {
			o.Interpretation = interp("HH")
		}
		obs = append(obs, o)
	}
	return obs
}

// noNonsense fails when a text shown to a user holds NaN or Inf (the hostile
// texts as sent hold neither) or is unreasonably long.
func noNonsense(t *testing.T, what, s string, maxLen int) {
	t.Helper()
	if strings.Contains(s, "NaN") || strings.Contains(s, "Inf") || len(s) > maxLen {
		t.Errorf("%s = %q", what, s)
	}
}

// TestResultNumbers: a plain number counts as a number only when a float64
// holds it; anything else is shown exactly as sent and kept off charts and
// deltas, and so are range limits.
func TestResultNumbers(t *testing.T) {
	for _, text := range hostileTexts {
		o := obsAt("x", "2823-3", "Potassium", "", time.Date(2024, 3, 1, 8, 0, 0, 0, time.UTC), "")
		o.Value = decimal(text, "mmol/L")
		o.Ranges = []fhir.Range{{Low: decimalBound(text), High: decimalBound(text)}}
		r := result(&o, time.UTC)
		v, unrep := fhir.ParseDecimal(text)
		if r.Row.Value != text || r.HasNum == unrep || (r.HasNum && r.Num != v) || r.Unplotted != unrep {
			t.Errorf("%s: value %q, number %v (%v), unplotted %v", text, r.Row.Value, r.Num, r.HasNum, r.Unplotted)
		}
		if (r.Low != nil) == unrep || (r.High != nil) == unrep || r.Row.Range != text+"–"+text {
			t.Errorf("%s: range %q, low %v, high %v", text, r.Row.Range, r.Low, r.High)
		}
	}
	// A number a careless caller left infinite or NaN is not a number either.
	for _, v := range []float64{math.Inf(1), math.Inf(-1), math.NaN()} {
		o := obsAt("x", "2823-3", "Potassium", "5", time.Date(2024, 3, 1, 8, 0, 0, 0, time.UTC), "")
		o.Value.Quantity.Value = v
		o.Ranges[0].Low.Value, o.Ranges[0].High.Value = v, v
		if r := result(&o, time.UTC); r.HasNum || r.Low != nil || r.High != nil || !r.Unplotted {
			t.Errorf("%v: %+v", v, r)
		}
	}
	// A plain number without a collection time cannot be placed on a chart.
	o := obsAt("x", "2823-3", "Potassium", "5", time.Time{}, "")
	if r := result(&o, time.UTC); !r.HasNum || !r.Unplotted {
		t.Errorf("number without a time: has number %v, unplotted %v", r.HasNum, r.Unplotted)
	}
}

// TestDeltaHostile: the change since the previous result is a short decimal,
// never NaN or Inf, and left out when it cannot be computed.
func TestDeltaHostile(t *testing.T) {
	tests := []struct {
		latest, prev string
		want         string
		dir          labs.Direction
	}{
		{"6.9", "5.40", "+1.50", labs.DirUp},
		{"4.0", "4.00", "0.00", labs.DirSame},
		{"0.30000000000000004", "0.3", "+5.55112e-17", labs.DirUp},
		{"1e308", "-1e308", "", labs.DirNone},
		{"-1.7976931348623157e308", "1.7976931348623157e308", "", labs.DirNone},
		{"1e400", "5", "", labs.DirNone},
		{"5", "-1e400", "", labs.DirNone},
		{"1e-400", "0", "", labs.DirNone},
		{"1.5e-3", "1.2e-3", "+0.0003", labs.DirUp},
		{"1.2E+3", "1000", "+200", labs.DirUp},
		{"5e-324", "0", "+4.94066e-324", labs.DirUp},
		{"1E+20", "1", "+1e+20", labs.DirUp},
		{"0.000000001", "0.000000002", "\u22120.000000001", labs.DirDown},
		{"-0", "0", "0", labs.DirSame},
	}
	at := time.Date(2024, 3, 1, 8, 0, 0, 0, time.UTC)
	for _, tt := range tests {
		l, p := obsAt("l", "2823-3", "K", "", at, ""), obsAt("p", "2823-3", "K", "", at, "")
		l.Value, p.Value = decimal(tt.latest, "mmol/L"), decimal(tt.prev, "mmol/L")
		lr, pr := result(&l, time.UTC), result(&p, time.UTC)
		got, dir := delta(&lr, &pr)
		if got != tt.want || dir != tt.dir {
			t.Errorf("delta(%s, %s) = %q %q, want %q %q", tt.latest, tt.prev, got, dir, tt.want, tt.dir)
		}
	}
}

// TestDeltaProperties: for every pair of hostile values, the delta is short,
// never NaN or Inf, and its direction agrees with the numbers.
func TestDeltaProperties(t *testing.T) {
	at := time.Date(2024, 3, 1, 8, 0, 0, 0, time.UTC)
	for _, a := range hostileTexts {
		for _, b := range hostileTexts {
			l, p := obsAt("l", "2823-3", "K", "", at, ""), obsAt("p", "2823-3", "K", "", at, "")
			l.Value, p.Value = decimal(a, "mmol/L"), decimal(b, "mmol/L")
			lr, pr := result(&l, time.UTC), result(&p, time.UTC)
			got, dir := delta(&lr, &pr)
			noNonsense(t, "delta("+a+", "+b+")", got, 32)
			if (got == "") != (dir == labs.DirNone) {
				t.Errorf("delta(%s, %s) = %q %q", a, b, got, dir)
			}
			if dir == labs.DirNone {
				continue
			}
			want := labs.DirSame
			if lr.Num > pr.Num {
				want = labs.DirUp
			} else if lr.Num < pr.Num {
				want = labs.DirDown
			}
			if dir != want {
				t.Errorf("delta(%s, %s) = %q %q, want %q", a, b, got, dir, want)
			}
		}
	}
}

// TestDecimals counts the decimal places a number as sent shows.
func TestDecimals(t *testing.T) {
	for s, want := range map[string]int{
		"5": 0, "5.40": 2, "-0.5": 1, "1.5e-3": 4, "1.5E+3": 0, "1e-400": 400, "1.25e1": 1,
		"1e-99999999999999999999999": 10000, "1e99999999999999999999999": 0,
	} {
		if got := decimals(s); got != want {
			t.Errorf("decimals(%q) = %d, want %d", s, got, want)
		}
	}
}

// TestNumberText: a number without its text is written in short decimal
// form, never as NaN or Inf.
func TestNumberText(t *testing.T) {
	for v, want := range map[float64]string{
		0.25: "0.25", 1e308: "1e+308", 5e-324: "5e-324", 1200: "1200",
		math.Inf(1): "", math.Inf(-1): "", math.NaN(): "",
	} {
		if got := numberText(&fhir.Quantity{Value: v}); got != want {
			t.Errorf("numberText(%v) = %q, want %q", v, got, want)
		}
	}
}

// TestHostileViews maps hostile results (every hostile value, date and range,
// as the decoders give them and as raw ±Inf and NaN) through every view and
// every filter: charts hold only finite values with a time, every plain
// number is either charted or counted as left off, deltas and texts are
// never NaN or Inf, and results stay newest first with timeless ones last.
func TestHostileViews(t *testing.T) {
	obs := hostileObservations(10 * len(hostileTexts) * len(hostileDates))
	for _, now := range []time.Time{time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC), hostileDates[1], hostileDates[5]} {
		for _, f := range []labs.Filter{{}, {Range: "7d"}, {Range: "30d"}, {Range: "1y"}, {Sort: "name"}, {Abnormal: true}} {
			rs := Results(obs, time.UTC)
			checkNewestFirst(t, rs)
			kept := Apply(rs, f, now, false)
			s := SummaryOf(kept, f, "/l/L")
			for _, a := range append(append([]labs.AnalyteLine{}, s.Pinned...), linesOf(s)...) {
				checkChart(t, "sparkline", a.Spark, SparkPoints)
				noNonsense(t, "delta", a.Delta, 32)
			}
			a := AnalyteOf(kept, "2823-3", "/l/L", labs.ModeSummary, f)
			if len(kept) == 0 {
				continue
			}
			if a == nil || len(a.Rows) != len(kept) {
				t.Fatalf("drill-down of %d results: %+v", len(kept), a)
			}
			checkChart(t, "drill-down", a.Chart, len(kept))
			plain := 0
			for _, r := range kept {
				if r.HasNum || r.Unplotted {
					plain++
				}
				for what, s := range map[string]string{"value": r.Row.Value, "range": r.Row.Range, "collected": r.Row.Collected, "iso": r.Row.CollectedISO} {
					noNonsense(t, what, s, 400)
				}
			}
			if len(a.Chart.Points)+a.Chart.Unplotted != plain {
				t.Errorf("%v: %d points charted and %d left off, of %d plain numbers", f, len(a.Chart.Points), a.Chart.Unplotted, plain)
			}
		}
	}
}

// linesOf flattens a summary's groups.
func linesOf(s *labs.Summary) []labs.AnalyteLine {
	var out []labs.AnalyteLine
	for _, g := range s.Groups {
		out = append(out, g.Lines...)
	}
	return out
}

// checkChart checks a chart holds only finite values with a time, oldest
// first, at most max of them, and finite band limits with low <= high.
func checkChart(t *testing.T, what string, c labs.Chart, max int) {
	t.Helper()
	if len(c.Points) > max {
		t.Errorf("%s: %d points, want at most %d", what, len(c.Points), max)
	}
	for i, p := range c.Points {
		if math.IsNaN(p.Value) || math.IsInf(p.Value, 0) || p.At.IsZero() {
			t.Errorf("%s: point %d is %v at %v", what, i, p.Value, p.At)
		}
		if i > 0 && p.At.Before(c.Points[i-1].At) {
			t.Errorf("%s: point %d at %v is before %v", what, i, p.At, c.Points[i-1].At)
		}
	}
	for _, b := range []*float64{c.Low, c.High} {
		if b != nil && (math.IsNaN(*b) || math.IsInf(*b, 0)) {
			t.Errorf("%s: band limit %v", what, *b)
		}
	}
}

// checkNewestFirst checks results are newest first, timeless ones last.
func checkNewestFirst(t *testing.T, rs []Result) {
	t.Helper()
	for i := 1; i < len(rs); i++ {
		a, b := rs[i-1].At, rs[i].At
		if (a.IsZero() && !b.IsZero()) || (!a.IsZero() && !b.IsZero() && a.Before(b)) {
			t.Fatalf("result %d at %v comes before result %d at %v", i-1, a, i, b)
		}
	}
}

// TestViewsWorkIsLinear: mapping and summarising 10,000 hostile results
// allocates about ten times what 1,000 take (O(n) memory; the bound of 20x is
// wide, a quadratic step would take 100x), so no value or date makes the work
// grow faster than the results.
func TestViewsWorkIsLinear(t *testing.T) {
	work := func(n int) uint64 {
		obs := hostileObservations(n)
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		rs := Results(obs, time.UTC)
		SummaryOf(rs, labs.Filter{}, "/l/L")
		AnalyteOf(rs, "2823-3", "/l/L", labs.ModeSummary, labs.Filter{})
		runtime.ReadMemStats(&after)
		return after.TotalAlloc - before.TotalAlloc
	}
	small, large := work(1000), work(10000)
	t.Logf("allocated %d bytes for 1,000 results, %d for 10,000 (%.1fx)", small, large, float64(large)/float64(small))
	if large > 20*small {
		t.Errorf("10,000 results allocate %d bytes, 1,000 allocate %d: more than linear", large, small)
	}
}

// TestHostileDatesRows: the list keeps results newest first from year 9999
// down to year 1, timeless ones last, and shows each time in the zone asked
// for, even past year 9999 there.
func TestHostileDatesRows(t *testing.T) {
	kiritimati := time.FixedZone("+14", 14*3600)
	obs := hostileObservations(len(hostileTexts) * len(hostileDates))
	rows := Rows(obs, kiritimati)
	byID := map[string]fhir.Observation{}
	for _, o := range obs {
		byID[o.ID] = o
	}
	for i := 1; i < len(rows); i++ {
		a, b := byID[rows[i-1].ID].Effective, byID[rows[i].ID].Effective
		if (a.IsZero() && !b.IsZero()) || (!b.IsZero() && a.Before(b)) {
			t.Fatalf("row %d at %v comes before row %d at %v", i-1, a, i, b)
		}
	}
	for _, c := range []struct {
		at       time.Time
		dateOnly bool
		want     string
	}{
		{time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC), false, "10000-01-01 13:59"},
		{time.Date(1, 1, 1, 0, 0, 1, 0, time.UTC), false, "0001-01-01 14:00"},
		{time.Date(1, 1, 2, 0, 0, 0, 0, time.UTC), true, "0001-01-02"},
		{time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC), true, "9999-12-31"},
		{time.Time{}, false, ""},
	} {
		o := fhir.Observation{Effective: c.at, EffectiveDateOnly: c.dateOnly}
		if got, _ := collected(&o, kiritimati); got != c.want {
			t.Errorf("collected(%v) = %q, want %q", c.at, got, c.want)
		}
	}
}
