package labsview_test

import (
	"context"
	"math"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"smartlabs/components/labs"
	"smartlabs/server/fhir"
	"smartlabs/server/labsview"
)

// ucum is the UCUM code system.
const ucum = "http://unitsofmeasure.org"

// jsonNumber is the grammar of a JSON number: the only text a FHIR decimal
// can arrive as.
var jsonNumber = regexp.MustCompile(`^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$`)

// FHIR dateTimes run from year 1 to year 9999.
var (
	firstSecond = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	lastSecond  = time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC).Unix()
)

// coordAttr finds the SVG coordinates of a rendered view.
var coordAttr = regexp.MustCompile(`\s(cx|cy|x|y|x1|x2|y1|y2|width|height|points)="([^"]*)"`)

// countingWriter counts the bytes written to it.
type countingWriter struct {
	n int
	b strings.Builder
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.n += len(p)
	return w.b.Write(p)
}

// FuzzRenderLabs maps results of one analyte, with fuzzed values, range
// limits and collection times (in UCUM units, so that flags are computed
// where the lab sent none), through the summary, the drill-down, the list
// and the flowsheet, and renders each. No render fails or says NaN or Inf, every SVG
// coordinate is a finite number inside its chart, and each render's output
// and the memory it allocates stay within a bound linear in the results and
// their text: a value can make no render loop on.
func FuzzRenderLabs(f *testing.F) {
	year1, year9999 := firstSecond+1, lastSecond
	now := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC).Unix()
	f.Add("0.3", "0.30000000000000004", "0.3", "3.5", "5.1", now-86400*30, now, uint16(20))
	f.Add("1e400", "-1e400", "1e-400", "1e400", "-1e400", now-86400, now, uint16(3))
	f.Add("1e308", "-1e308", "1.7976931348623157e308", "-1e308", "1e308", year1, year9999, uint16(200))
	f.Add("5e-324", "2.2250738585072014e-308", "0", "5e-324", "5e-324", year9999, year1, uint16(9))
	f.Add("4", "4", "4", "4", "4", now, now, uint16(300))
	f.Add("4.1", "6.0", "3.9", "5.1", "3.5", year1, year1+1, uint16(2))
	f.Fuzz(func(t *testing.T, a, b, c, low, high string, t0, t1 int64, n uint16) {
		values := []string{a, b, c}
		for _, s := range append(values, low, high) {
			if s != "" && !jsonNumber.MatchString(s) {
				t.Skip("not a JSON number")
			}
		}
		if a == "" {
			t.Skip("no value")
		}
		count := int(n)%1000 + 1
		t0, t1 = min(max(t0, firstSecond), lastSecond), min(max(t1, firstSecond), lastSecond)
		obs := make([]fhir.Observation, 0, count)
		textLen := 0
		for i := range count {
			text := values[i%3]
			if text == "" {
				text = a
			}
			textLen += len(text) + len(low) + len(high)
			v, unrep := fhir.ParseDecimal(text)
			o := fhir.Observation{
				ID: "f" + strconv.Itoa(i), Status: "final", LOINC: "2823-3", Code: fhir.Concept{Text: "Potassium"},
				Value: fhir.Value{Kind: fhir.ValueQuantity, Quantity: fhir.Quantity{Value: v, ValueText: text, Unrepresentable: unrep, Unit: "mmol/L", System: ucum, Code: "mmol/L"}},
			}
			if i != 4 {
				// The fifth result has no collection time; the others are evenly spread from t0 to t1.
				sec := t0
				if count > 1 {
					sec = t0 + (t1-t0)/int64(count-1)*int64(i)
				}
				o.Effective = time.Unix(sec, 0).UTC()
			}
			var rg fhir.Range
			for _, lim := range []struct {
				text string
				dst  **fhir.Quantity
			}{{low, &rg.Low}, {high, &rg.High}} {
				if lim.text != "" {
					v, unrep := fhir.ParseDecimal(lim.text)
					*lim.dst = &fhir.Quantity{Value: v, ValueText: lim.text, Unrepresentable: unrep, System: ucum, Code: "mmol/L"}
				}
			}
			o.Ranges = []fhir.Range{rg}
			if i%3 == 1 {
				o.Interpretation = []fhir.Concept{{Codings: []fhir.Coding{{Code: "HH"}}}}
			}
			obs = append(obs, o)
		}

		rs := labsview.Results(obs, time.UTC)
		filter := labs.Filter{}
		base := labs.Props{LaunchID: "L1", BasePath: "/l/L1", TimeZone: "UTC", Total: len(rs), Shown: len(rs)}
		summary, analyte, list, flowsheet := base, base, base, base
		summary.Mode, summary.Summary = labs.ModeSummary, labsview.SummaryOf(rs, filter, "/l/L1")
		analyte.Mode, analyte.Analyte = labs.ModeAnalyte, labsview.AnalyteOf(rs, "2823-3", "/l/L1", labs.ModeSummary, filter)
		list.Mode, list.Rows = labs.ModeList, labsview.RowsOf(rs)
		flowsheet.Mode, flowsheet.Flowsheet = labs.ModeFlowsheet, labsview.FlowsheetOf(rs, labsview.PanelsOf(rs, nil), filter, "/l/L1", int(n)%50)
		for name, p := range map[string]labs.Props{"summary": summary, "drill-down": analyte, "list": list, "flowsheet": flowsheet} {
			var w countingWriter
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			if err := labs.Fragment(p).Render(context.Background(), &w); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			runtime.ReadMemStats(&after)
			// Bounds linear in the results and their text, with room to spare:
			// the views write under 2 KB per result and allocate about as much.
			limit := 64<<10 + 8<<10*count + 8*textLen
			if alloc := after.TotalAlloc - before.TotalAlloc; w.n > limit || alloc > uint64(3*limit) {
				t.Fatalf("%s of %d results (%d bytes of text): %d bytes written, %d allocated; limit %d", name, count, textLen, w.n, alloc, limit)
			}
			out := w.b.String()
			if strings.Contains(out, "NaN") || strings.Contains(out, "Inf") {
				t.Fatalf("%s says NaN or Inf", name)
			}
			for _, m := range coordAttr.FindAllStringSubmatch(out, -1) {
				for _, s := range strings.FieldsFunc(m[2], func(r rune) bool { return r == ' ' || r == ',' }) {
					if v, err := strconv.ParseFloat(s, 64); err != nil || math.IsNaN(v) || v < 0 || v > 640 {
						t.Fatalf("%s: %s=%q", name, m[1], m[2])
					}
				}
			}
		}
	})
}
