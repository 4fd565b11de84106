package labs_test

import (
	"bytes"
	"context"
	"math"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"golang.org/x/net/html"

	"smartlabs/components/internal/htmlcheck"
	"smartlabs/components/labs"
)

// hostilePoints are n chart points cycling through numbers and dates a
// careless caller may pass: not finite, at the ends of the float range,
// subnormal, one ulp apart; years 1 and 9999 and no time at all. A point's
// text is its value as an EHR would have sent it.
func hostilePoints(n int) []labs.Point {
	values := []struct {
		v    float64
		text string
	}{
		{math.Inf(1), "1e400"}, {math.Inf(-1), "-1e400"}, {math.NaN(), "1e-400"},
		{1e308, "1e308"}, {-1e308, "-1e308"}, {math.MaxFloat64, "1.7976931348623157e308"},
		{5e-324, "5e-324"}, {0.3, "0.3"}, {0.30000000000000004, "0.30000000000000004"}, {4.1, "4.1"},
	}
	dates := []time.Time{
		time.Date(1, 1, 1, 0, 0, 1, 0, time.UTC), time.Date(2024, 3, 1, 8, 0, 0, 0, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC), {},
	}
	pts := make([]labs.Point, 0, n)
	for i := range n {
		v, at := values[i%len(values)], dates[i%len(dates)]
		p := labs.Point{At: at, Label: at.Format("2006-01-02 15:04"), Value: v.v, Text: v.text}
		if i%3 == 0 {
			p.Flag = labs.FlagCriticalHigh
		}
		pts = append(pts, p)
	}
	return pts
}

// hostileProps is a summary with one line per hostile sparkline, or the
// drill-down of an analyte with n hostile points, in both cases with results
// left off the chart.
func hostileProps(mode labs.Mode, n int) labs.Props {
	p := baseProps()
	p.Mode, p.BasePath, p.TimeZone = mode, "/l/L1", "UTC"
	low, high, equal := 5.1, 3.5, 4.0
	bands := [][2]*float64{{nil, nil}, {&high, &low}, {&low, &high}, {&equal, &equal}, {fp(math.Inf(-1)), fp(math.NaN())}, {fp(-1e308), fp(math.MaxFloat64)}}
	if mode == labs.ModeAnalyte {
		pts := hostilePoints(n)
		rows := make([]labs.Row, 0, n)
		for i, pt := range pts {
			rows = append(rows, labs.Row{ID: "h" + strconv.Itoa(i), Name: "Potassium", Value: pt.Text, Unit: "mmol/L", Collected: pt.Label})
		}
		p.Analyte = &labs.Analyte{Key: "2823-3", Name: "Potassium", Unit: "mmol/L", Range: "5.1–3.5", Rows: rows, BackURL: "/l/L1",
			Chart: labs.Chart{Points: pts, Low: bands[n%len(bands)][0], High: bands[n%len(bands)][1], Unit: "mmol/L", Unplotted: 3}}
		return p
	}
	var lines []labs.AnalyteLine
	for i, b := range bands {
		pts := hostilePoints(20)
		// Shift the cycle so each line starts on another value.
		pts = append(pts[i:], pts[:i]...)
		latest := labs.Row{ID: "l" + strconv.Itoa(i), Name: "Potassium", Value: pts[len(pts)-1].Text, Unit: "mmol/L"}
		lines = append(lines, labs.AnalyteLine{Key: "k" + strconv.Itoa(i), URL: "/l/L1/a/k", Name: "Potassium", Latest: latest, Count: len(pts) + 2,
			Spark: labs.Chart{Points: pts, Low: b[0], High: b[1], Unit: "mmol/L", Unplotted: 2}})
	}
	p.Summary = &labs.Summary{Groups: []labs.Group{{Lines: lines}}}
	return p
}

// render renders p's fragment.
func render(t *testing.T, p labs.Props) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := labs.Fragment(p).Render(context.Background(), &b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestHostileChartsRender renders the summary and a drill-down of hostile
// charts: no attribute or text says NaN or Inf except values as sent, every
// SVG coordinate is a number inside the chart, the text alternatives name
// plotted points only, and the results left off are said to be.
func TestHostileChartsRender(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    labs.Props
	}{
		{"summary", hostileProps(labs.ModeSummary, 0)},
		{"drill-down", hostileProps(labs.ModeAnalyte, 1000)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := htmlcheck.MustParse(t, string(render(t, tc.p)))
			htmlcheck.AssertCSPSafe(t, doc)
			doc.Find("svg").Each(func(_ int, svg *goquery.Selection) {
				vb := strings.Fields(svg.AttrOr("viewBox", ""))
				w, _ := strconv.ParseFloat(vb[2], 64)
				h, _ := strconv.ParseFloat(vb[3], 64)
				svg.Find("*").Each(func(_ int, el *goquery.Selection) {
					for _, a := range el.Nodes[0].Attr {
						checkCoord(t, el, a, w, h)
					}
				})
			})
			doc.Find("*").Each(func(_ int, el *goquery.Selection) {
				for _, c := range el.Nodes[0].Attr {
					if c.Key != "data-value" && c.Key != "aria-label" && (strings.Contains(c.Val, "NaN") || strings.Contains(c.Val, "Inf")) {
						t.Errorf("<%s %s=%q>", goquery.NodeName(el), c.Key, c.Val)
					}
				}
			})
			if s := doc.Text(); strings.Contains(s, "NaN") || strings.Contains(s, "Inf") {
				t.Errorf("the view says NaN or Inf")
			}
			if tc.name == "drill-down" {
				pts := tc.p.Analyte.Chart.Points
				left := 3 + len(pts) - plottable(pts)
				if got := text(doc.Find(`[data-testid="chart-unplotted"]`)); !strings.HasPrefix(got, thousands(left)+" results are not on the chart") {
					t.Errorf("note on results left off the chart: %q", got)
				}
				title := text(doc.Find("title#chart-title"))
				if strings.Contains(title, "1e400") || strings.Contains(title, "1e-400") || !strings.Contains(title, "lowest -1e308") || !strings.Contains(title, "highest 1.7976931348623157e308") {
					t.Errorf("chart title names unplotted points or misses the extremes: %q", title)
				}
				if n := doc.Find(`[data-testid="chart-point"]`).Length(); n != plottable(pts) {
					t.Errorf("%d chart points, want %d", n, plottable(pts))
				}
			} else {
				doc.Find(`[data-testid="sparkline"]`).Each(func(_ int, s *goquery.Selection) {
					if l := s.AttrOr("aria-label", ""); !strings.Contains(l, " not plotted") || strings.Contains(l, "e400") || strings.Contains(l, "e-400") {
						t.Errorf("sparkline label %q", l)
					}
				})
			}
		})
	}
}

// plottable counts the points a chart can place: a finite value and a time.
func plottable(pts []labs.Point) int {
	n := 0
	for _, p := range pts {
		if !math.IsNaN(p.Value) && !math.IsInf(p.Value, 0) && !p.At.IsZero() {
			n++
		}
	}
	return n
}

// thousands writes n with comma separators.
func thousands(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// checkCoord checks a coordinate attribute of an SVG element: one or more
// finite numbers within the chart's width and height.
func checkCoord(t *testing.T, el *goquery.Selection, a html.Attribute, w, h float64) {
	t.Helper()
	var nums []string
	var limit float64
	switch a.Key {
	case "x", "cx", "x1", "x2", "width":
		nums, limit = []string{a.Val}, w
	case "y", "cy", "y1", "y2", "height":
		nums, limit = []string{a.Val}, h
	case "points":
		for _, pair := range strings.Fields(a.Val) {
			x, y, _ := strings.Cut(pair, ",")
			checkCoord(t, el, html.Attribute{Key: "x", Val: x}, w, h)
			checkCoord(t, el, html.Attribute{Key: "y", Val: y}, w, h)
		}
		return
	default:
		return
	}
	for _, s := range nums {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > limit {
			t.Errorf("<%s %s=%q> is not within 0..%v", goquery.NodeName(el), a.Key, a.Val, limit)
		}
	}
}

// countingWriter counts the bytes written to it.
type countingWriter int

func (w *countingWriter) Write(p []byte) (int, error) {
	*w += countingWriter(len(p))
	return len(p), nil
}

// TestRenderWorkIsLinear: the drill-down of 10,000 hostile points writes and
// allocates about ten times what 1,000 take (O(n); the bound is 15x, a
// quadratic step would take 100x), and its output stays within 4 KB per point (a table row and a
// chart point).
func TestRenderWorkIsLinear(t *testing.T) {
	work := func(n int) (out int, alloc uint64) {
		p := hostileProps(labs.ModeAnalyte, n)
		var before, after runtime.MemStats
		var w countingWriter
		runtime.GC()
		runtime.ReadMemStats(&before)
		if err := labs.Fragment(p).Render(context.Background(), &w); err != nil {
			t.Fatal(err)
		}
		runtime.ReadMemStats(&after)
		return int(w), after.TotalAlloc - before.TotalAlloc
	}
	smallOut, smallAlloc := work(1000)
	largeOut, largeAlloc := work(10000)
	t.Logf("drill-down of 1,000 points: %d bytes written, %d allocated; of 10,000: %d written, %d allocated (%.1fx, %.1fx)",
		smallOut, smallAlloc, largeOut, largeAlloc, float64(largeOut)/float64(smallOut), float64(largeAlloc)/float64(smallAlloc))
	if largeOut > 4096*10000 || largeOut > 12*smallOut || largeAlloc > 15*smallAlloc {
		t.Errorf("rendering grows faster than the points")
	}
}
