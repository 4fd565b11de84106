package labs

import (
	"cmp"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// mustFinish runs fn and fails the test when it has not returned within
// limit. The limit is only a failure bound, many times what fn needs; a
// function that never returns is left running, so the test binary must end.
func mustFinish(t *testing.T, limit time.Duration, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	select {
	case <-done:
	case <-time.After(limit):
		t.Fatalf("still running after %v", limit)
	}
}

// TestNiceTicksTerminates: two values one rounding error apart once made the
// step so small that v += step stopped changing v, and the tick loop ran until
// the process ran out of memory.
func TestNiceTicksTerminates(t *testing.T) {
	for _, c := range []struct{ lo, hi float64 }{
		{0.3, 0.30000000000000004},
		{1e16, 1e16 + 2},
		{1, math.Nextafter(1, 2)},
		{-math.MaxFloat64, math.MaxFloat64},
		{0, math.SmallestNonzeroFloat64},
	} {
		var ticks []valueTick
		mustFinish(t, 5*time.Second, func() { ticks = niceTicks(c.lo, c.hi, 4) })
		if len(ticks) > 2*4+2 {
			t.Errorf("niceTicks(%v, %v) gave %d ticks, want at most 10", c.lo, c.hi, len(ticks))
		}
	}
}

// hostile are numbers a lab value or a range limit may hold, or a caller may
// pass by mistake: not finite, at the ends of the float range, subnormal, one
// ulp apart, and ordinary.
var hostile = []float64{
	math.NaN(), math.Inf(1), math.Inf(-1),
	1e308, -1e308, math.MaxFloat64, -math.MaxFloat64,
	math.SmallestNonzeroFloat64, -math.SmallestNonzeroFloat64, 2.2250738585072014e-308, 1e-310,
	0, math.Copysign(0, -1), 0.3, 0.30000000000000004, 1, math.Nextafter(1, 2), math.Nextafter(1, 0),
	-5.5, 4.1, 1e15, 1e16, 1e16 + 2, 123456.789, 1e-7,
}

// TestNiceTicksProperties: for every pair of hostile numbers, the ticks are
// finite, strictly increasing, at most n+2, inside the range give or take a
// step, and labelled with distinct short decimals that are never NaN or Inf.
// A wide enough range of finite values always gets at least two ticks.
func TestNiceTicksProperties(t *testing.T) {
	for _, lo := range hostile {
		for _, hi := range hostile {
			for _, n := range []int{-1, 0, 1, 4, 10} {
				ticks := niceTicks(lo, hi, n)
				name := strconv.FormatFloat(lo, 'g', -1, 64) + ".." + strconv.FormatFloat(hi, 'g', -1, 64) + "/" + strconv.Itoa(n)
				if len(ticks) > max(n, 0)+2 {
					t.Errorf("%s: %d ticks", name, len(ticks))
				}
				labels := map[string]bool{}
				for i, tk := range ticks {
					if !finite(tk.v) || (i > 0 && tk.v <= ticks[i-1].v) {
						t.Errorf("%s: tick %d is %v after %v", name, i, tk.v, ticks[max(i-1, 0)].v)
					}
					if span := hi/2 - lo/2; tk.v < lo-span || tk.v > hi+span {
						t.Errorf("%s: tick %v outside the range", name, tk.v)
					}
					if tk.label == "" || len(tk.label) > 26 || strings.ContainsAny(tk.label, "NI") || labels[tk.label] {
						t.Errorf("%s: label %q (labels so far %v)", name, tk.label, labels)
					}
					labels[tk.label] = true
					// A label is the tick's value to within half the gap to its neighbours.
					got, err := strconv.ParseFloat(tk.label, 64)
					gap := math.Inf(1)
					if i > 0 {
						gap = tk.v/2 - ticks[i-1].v/2
					}
					if i+1 < len(ticks) {
						gap = min(gap, ticks[i+1].v/2-tk.v/2)
					}
					if err != nil || (got != tk.v && math.Abs(got/2-tk.v/2) >= gap/2) {
						t.Errorf("%s: label %q does not read back as %v", name, tk.label, tk.v)
					}
				}
				wide := finite(lo) && finite(hi) && hi/2-lo/2 > 1e-9*max(math.Abs(lo), math.Abs(hi)) && hi/2-lo/2 > 1e-300
				if wide && n >= 4 && len(ticks) < 2 {
					t.Errorf("%s: %d ticks, want at least 2", name, len(ticks))
				}
			}
		}
	}
}

func TestDecimalLabel(t *testing.T) {
	for _, c := range []struct {
		v    float64
		exp  int
		want string
	}{
		{0, 0, "0"},
		{0.30000000000000004, -1, "0.3"},
		{0.25, -2, "0.25"},
		{1200, 2, "1200"},
		{-3, 0, "-3"},
		{7.5, -1, "7.5"},
		{100, 1, "100"},
		{1e308, 308, "1e+308"},
		{-2e307, 307, "-2e+307"},
		{2.5e-17, -18, "2.5e-17"},
		{5e-324, -324, "5e-324"},
		{0.000001, -6, "0.000001"},
		{1e15, 15, "1e+15"},
		{999999999999999, 0, "999999999999999"},
		{0.3, -17, "0.29999999999999999"},
		{math.NaN(), 0, ""},
		{math.Inf(-1), 0, ""},
	} {
		if got := decimalLabel(c.v, c.exp); got != c.want {
			t.Errorf("decimalLabel(%v, %d) = %q, want %q", c.v, c.exp, got, c.want)
		}
	}
}

// hostileTimes are collection times at the ends of what a FHIR dateTime can
// hold, the zero time (no time sent), and ordinary ones.
var hostileTimes = []time.Time{
	time.Date(1, 1, 1, 0, 0, 1, 0, time.UTC),
	time.Date(1, 6, 15, 8, 0, 0, 0, time.UTC),
	time.Date(2024, 3, 1, 8, 0, 0, 0, time.UTC),
	time.Date(2024, 3, 1, 8, 0, 0, 1, time.UTC),
	time.Date(2026, 11, 2, 7, 30, 0, 0, time.FixedZone("", -5*3600)),
	time.Date(5000, 7, 1, 0, 0, 0, 0, time.UTC),
	time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
	time.Date(9999, 12, 31, 23, 0, 0, 0, time.FixedZone("", 14*3600)),
	{},
}

// hostileBounds are reference range limits: open, hostile numbers, and pairs
// with low == high and low > high.
func hostileBounds() [][2]*float64 {
	out := [][2]*float64{{nil, nil}, {ptr(3.5), ptr(5.1)}, {ptr(4), ptr(4)}, {ptr(5.1), ptr(3.5)},
		{ptr(0.3), ptr(0.30000000000000004)}, {ptr(-1e308), ptr(1e308)}}
	for _, v := range hostile {
		out = append(out, [2]*float64{ptr(v), nil}, [2]*float64{nil, ptr(v)})
	}
	return out
}

func ptr(f float64) *float64 { return &f }

// hostileCharts are the charts the property tests lay out.
func hostileCharts() map[string]Chart {
	charts := map[string]Chart{}
	at := func(i int) time.Time { return hostileTimes[i%len(hostileTimes)] }
	day := time.Date(2024, 3, 1, 8, 0, 0, 0, time.UTC)
	for i, a := range hostile {
		for j, b := range hostile {
			pts := []Point{{At: day, Value: a, Text: "a"}, {At: day.AddDate(0, 0, 1), Value: b, Text: "b", Flag: FlagHigh}}
			charts["pair "+strconv.Itoa(i)+","+strconv.Itoa(j)] = Chart{Points: pts}
		}
		charts["equal "+strconv.Itoa(i)] = Chart{Points: []Point{{At: day, Value: a}, {At: day.AddDate(0, 0, 1), Value: a}, {At: day.AddDate(0, 0, 2), Value: a}}}
		charts["single "+strconv.Itoa(i)] = Chart{Points: []Point{{At: day, Value: a}}}
	}
	for i := range hostileTimes {
		for j := range hostileTimes {
			charts["times "+strconv.Itoa(i)+","+strconv.Itoa(j)] = Chart{Points: []Point{{At: hostileTimes[i], Value: 1}, {At: hostileTimes[j], Value: 2}}}
		}
	}
	charts["same time"] = Chart{Points: []Point{{At: day, Value: 1}, {At: day, Value: 2}, {At: day, Value: 3}}}
	charts["years 1 to 9999"] = Chart{Points: []Point{{At: at(0), Value: 1}, {At: at(5), Value: 2}, {At: at(6), Value: 3}}}
	for k, b := range hostileBounds() {
		charts["bounds "+strconv.Itoa(k)] = Chart{Low: b[0], High: b[1], Points: []Point{{At: day, Value: 4.1}, {At: day.AddDate(0, 0, 1), Value: 6, Flag: FlagHigh}}}
		charts["bounds on ulp values "+strconv.Itoa(k)] = Chart{Low: b[0], High: b[1], Points: []Point{{At: day, Value: 0.3}, {At: day.AddDate(0, 0, 1), Value: 0.30000000000000004}}}
	}
	var many []Point
	for i := range 10000 {
		many = append(many, Point{At: at(i), Value: hostile[i%len(hostile)], Flag: FlagHigh})
	}
	charts["10,000 hostile points"] = Chart{Points: many, Low: ptr(-1e308), High: ptr(math.MaxFloat64)}
	return charts
}

// plotted are the points of c a chart can place: a finite value and a time.
func plotted(c Chart) []Point {
	var out []Point
	for _, p := range c.Points {
		if finite(p.Value) && !p.At.IsZero() {
			out = append(out, p)
		}
	}
	return out
}

// coord reads a coordinate and checks it is a finite number within [0, limit].
func coord(t *testing.T, name, what, s string, limit float64) float64 {
	t.Helper()
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || !finite(f) || f < 0 || f > limit {
		t.Errorf("%s: %s = %q, want a number within 0..%v", name, what, s, limit)
	}
	return f
}

// secs is t in seconds since 1970, as a float: a duration between years 1
// and 9999 does not fit time.Duration.
func secsOf(t time.Time) float64 { return float64(t.Unix()) + float64(t.Nanosecond())/1e9 }

// TestLayoutChartProperties lays out every hostile chart in both boxes: every
// coordinate is a finite number inside the box, the points are the finite
// values with a time, placed in the order of their values and in proportion
// to their times (years 1 to 9999 included), and the axes have a bounded
// number of distinct, short labels.
func TestLayoutChartProperties(t *testing.T) {
	for name, c := range hostileCharts() {
		for _, box := range []chartBox{sparkBox, bigBox} {
			var g chartGeom
			mustFinish(t, 10*time.Second, func() { g = layoutChart(c, box) })
			checkGeom(t, name, c, box, g)
		}
	}
}

func checkGeom(t *testing.T, name string, c Chart, box chartBox, g chartGeom) {
	t.Helper()
	for what, s := range map[string]string{"W": g.W, "PlotX": g.PlotX, "PlotW": g.PlotW, "Left": g.Left, "Right": g.Right} {
		coord(t, name, what, s, box.w)
	}
	for what, s := range map[string]string{"H": g.H, "PlotY": g.PlotY, "PlotH": g.PlotH, "Baseline": g.Baseline} {
		coord(t, name, what, s, box.h)
	}
	want := plotted(c)
	if len(g.Points) != len(want) || (len(want) > 0 && strings.Count(g.Line, ",") != len(want)) {
		t.Errorf("%s: %d points, line %q; want %d points", name, len(g.Points), g.Line, len(want))
		return
	}
	xs, ys := make([]float64, len(want)), make([]float64, len(want))
	for i, p := range g.Points {
		xs[i] = coord(t, name, "point x", p.X, box.w)
		ys[i] = coord(t, name, "point y", p.Y, box.h)
		if p.P.Value != want[i].Value && !(math.IsNaN(p.P.Value) && math.IsNaN(want[i].Value)) {
			t.Errorf("%s: point %d is %v, want %v", name, i, p.P.Value, want[i].Value)
		}
	}
	t0, t1 := math.Inf(1), math.Inf(-1)
	for _, p := range want {
		t0, t1 = min(t0, secsOf(p.At)), max(t1, secsOf(p.At))
	}
	pw := box.w - box.left - box.right
	// Higher values are drawn higher (smaller y), or level: checked in value order.
	order := make([]int, len(want))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(want[a].Value, want[b].Value) })
	for k := 1; k < len(order); k++ {
		i, j := order[k-1], order[k]
		if want[i].Value < want[j].Value && ys[i] < ys[j] {
			t.Errorf("%s: %v is drawn above %v", name, want[i].Value, want[j].Value)
		}
	}
	for i := range want {
		if t1 > t0 {
			wantX := box.left + pw*(secsOf(want[i].At)-t0)/(t1-t0)
			if math.Abs(xs[i]-wantX) > 0.1 {
				t.Errorf("%s: point at %v drawn at x=%v, want %.1f", name, want[i].At, xs[i], wantX)
			}
		}
	}
	if g.Band != nil {
		coord(t, name, "band x", g.Band.X, box.w)
		coord(t, name, "band w", g.Band.W, box.w)
		y := coord(t, name, "band y", g.Band.Y, box.h)
		h := coord(t, name, "band h", g.Band.H, box.h)
		if y+h > box.h {
			t.Errorf("%s: band %v+%v leaves the box", name, y, h)
		}
	}
	if len(g.YTicks) > 6 || len(g.XTicks) > 5 {
		t.Errorf("%s: %d value ticks, %d date ticks", name, len(g.YTicks), len(g.XTicks))
	}
	for _, ticks := range [][]tick{g.YTicks, g.XTicks} {
		seen := map[string]bool{}
		for _, tk := range ticks {
			if tk.Label == "" || len(tk.Label) > 26 || strings.ContainsAny(tk.Label, "NI") || seen[tk.Label] {
				t.Errorf("%s: tick label %q among %v", name, tk.Label, ticks)
			}
			seen[tk.Label] = true
		}
	}
	for _, tk := range g.YTicks {
		coord(t, name, "value tick", tk.Pos, box.h)
	}
	prev := -1.0
	for _, tk := range g.XTicks {
		if x := coord(t, name, "date tick", tk.Pos, box.w); x <= prev {
			t.Errorf("%s: date ticks out of order: %v", name, g.XTicks)
		}
		prev, _ = strconv.ParseFloat(tk.Pos, 64)
	}
}

// TestThousands: every int gets its separators; the smallest once recursed
// forever (its negation is itself).
func TestThousands(t *testing.T) {
	for n, want := range map[int]string{
		0: "0", 999: "999", 1000: "1,000", -1000: "-1,000", 5000000: "5,000,000",
		math.MaxInt64: "9,223,372,036,854,775,807", math.MinInt64: "-9,223,372,036,854,775,808",
	} {
		var got string
		mustFinish(t, 5*time.Second, func() { got = thousands(n) })
		if got != want {
			t.Errorf("thousands(%d) = %q, want %q", n, got, want)
		}
	}
}

// TestTimeTicksProperties: for every pair of hostile times, the date axis has
// one to five distinct labels, left to right, each no longer than a date.
func TestTimeTicksProperties(t *testing.T) {
	for _, a := range hostileTimes {
		for _, b := range hostileTimes {
			if b.Before(a) {
				continue
			}
			span := seconds(b) - seconds(a)
			x := func(tm time.Time) float64 {
				if span <= 0 {
					return 320
				}
				return 56 + 568*fraction(seconds(tm)-seconds(a), 0, span)
			}
			ticks := timeTicks(a, b, x)
			if len(ticks) < 1 || len(ticks) > 5 {
				t.Errorf("%v..%v: %d ticks", a, b, len(ticks))
			}
			prev, seen := -1.0, map[string]bool{}
			for _, tk := range ticks {
				pos, err := strconv.ParseFloat(tk.Pos, 64)
				if err != nil || pos <= prev || pos < 56 || pos > 624 || seen[tk.Label] || len(tk.Label) > len("10000-01-01") {
					t.Errorf("%v..%v: ticks %v", a, b, ticks)
					break
				}
				prev, seen[tk.Label] = pos, true
			}
		}
	}
}

// TestFractionProperties: where a value lies between two bounds is a number
// from 0 to 1 that grows with the value, for every triple of hostile finite
// numbers, even when their differences overflow.
func TestFractionProperties(t *testing.T) {
	var finites []float64
	for _, v := range hostile {
		if finite(v) {
			finites = append(finites, v)
		}
	}
	for _, lo := range finites {
		for _, hi := range finites {
			if !(lo < hi) {
				continue
			}
			for _, v := range finites {
				f := fraction(v, lo, hi)
				if !(f >= 0 && f <= 1) {
					t.Errorf("fraction(%v, %v, %v) = %v", v, lo, hi, f)
				}
				for _, w := range finites {
					if v < w && fraction(w, lo, hi) < f {
						t.Errorf("fraction(%v) > fraction(%v) between %v and %v", v, w, lo, hi)
					}
				}
			}
		}
	}
}

func TestNoteExcerpt(t *testing.T) {
	tests := []struct {
		notes []string
		want  string
	}{
		{nil, ""},
		{[]string{"PATIENT WAS NOT FASTING"}, "PATIENT WAS NOT FASTING"},
		{[]string{"Specimen slightly hemolyzed, interpret with caution."}, "Specimen slightly hemolyzed, interpret…"},
		{[]string{"  two\n lines "}, "two lines"},
		{[]string{"short", "second"}, "short …"},
		{[]string{strings.Repeat("x", 60)}, strings.Repeat("x", 40) + "…"},
		{[]string{"Hämoglobin-Bestimmung nicht möglich wegen Gerinnsel im Röhrchen"}, "Hämoglobin-Bestimmung nicht möglich…"},
	}
	for _, tt := range tests {
		if got := noteExcerpt(tt.notes); got != tt.want {
			t.Errorf("noteExcerpt(%q) = %q, want %q", tt.notes, got, tt.want)
		}
	}
}
