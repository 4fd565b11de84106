package labs

import (
	"math"
	"strconv"
	"strings"
	"time"
)

// chartBox is the drawing area of a chart in SVG user units: the whole size and
// the margins left for the axes.
type chartBox struct {
	w, h                     float64
	left, right, top, bottom float64
}

// Sizes of the two charts. Their width and height are fixed attributes, so the
// page does not shift when a chart arrives.
var (
	sparkBox = chartBox{w: 120, h: 32, left: 3, right: 3, top: 4, bottom: 4}
	bigBox   = chartBox{w: 640, h: 240, left: 56, right: 16, top: 12, bottom: 32}
)

// geomPoint is a point placed on a chart.
type geomPoint struct {
	X, Y     string
	P        Point
	Abnormal bool
}

// geomRect is a rectangle on a chart, e.g. the reference band.
type geomRect struct{ X, Y, W, H string }

// tick is an axis label at a position (X for the time axis, Y for the value axis).
type tick struct {
	Pos   string
	Label string
}

// chartGeom is a chart laid out: everything the SVG needs, as attribute strings.
type chartGeom struct {
	W, H   string
	Points []geomPoint
	// Line is the polyline through the points ("x,y x,y ...").
	Line string
	// Band is the reference band, nil when the chart has no range.
	Band *geomRect
	// XTicks and YTicks label the axes of the large chart.
	XTicks, YTicks []tick
	// PlotX, PlotY, PlotW, PlotH frame the plot area.
	PlotX, PlotY, PlotW, PlotH string
	// Baseline is the y of the time axis; Left the x of the value axis.
	Baseline, Left, Right string
}

// num formats a coordinate with one decimal, enough for a sharp line.
// Coordinates are finite by construction; anything else becomes 0 rather
// than NaN in the SVG.
func num(f float64) string {
	if !finite(f) {
		f = 0
	}
	return strconv.FormatFloat(f, 'f', 1, 64)
}

// layoutChart places c's points in box: time on x, value on y. The value axis
// spans the values and the reference band, so the band is always drawn whole.
// Only points with a finite value and a collection time are placed; a band
// limit that is not finite is left open, and a band whose low is above its
// high is not drawn. Work and memory grow linearly with the points, whatever
// their values or dates.
func layoutChart(c Chart, box chartBox) chartGeom {
	g := chartGeom{W: num(box.w), H: num(box.h)}
	pw, ph := box.w-box.left-box.right, box.h-box.top-box.bottom
	g.PlotX, g.PlotY, g.PlotW, g.PlotH = num(box.left), num(box.top), num(pw), num(ph)
	g.Baseline, g.Left, g.Right = num(box.top+ph), num(box.left), num(box.left+pw)
	pts := plotPoints(c.Points)
	if len(pts) == 0 {
		return g
	}
	low, high := finiteOrNil(c.Low), finiteOrNil(c.High)
	if low != nil && high != nil && *low > *high {
		low, high = nil, nil
	}
	lo, hi := valueAxis(pts, low, high)
	y := func(v float64) float64 { return box.top + ph*(1-fraction(v, lo, hi)) }
	t0, t1 := pts[0].At, pts[0].At
	for _, p := range pts {
		if p.At.Before(t0) {
			t0 = p.At
		}
		if p.At.After(t1) {
			t1 = p.At
		}
	}
	// Seconds as floats: years 1 to 9999 span more than a time.Duration holds.
	s0, span := seconds(t0), seconds(t1)-seconds(t0)
	x := func(t time.Time) float64 {
		if !(span > 0) {
			return box.left + pw/2
		}
		return box.left + pw*fraction(seconds(t)-s0, 0, span)
	}
	g.Points = make([]geomPoint, 0, len(pts))
	line := make([]byte, 0, len(pts)*12)
	for i, p := range pts {
		gp := geomPoint{X: num(x(p.At)), Y: num(y(p.Value)), P: p, Abnormal: p.Flag != FlagNone}
		g.Points = append(g.Points, gp)
		if i > 0 {
			line = append(line, ' ')
		}
		line = append(line, gp.X...)
		line = append(line, ',')
		line = append(line, gp.Y...)
	}
	g.Line = string(line)
	if low != nil || high != nil {
		top, bottom := box.top, box.top+ph
		if high != nil {
			top = y(*high)
		}
		if low != nil {
			bottom = y(*low)
		}
		// At least one unit high, so low == high still shows, and never below the plot.
		h := math.Max(bottom-top, 1)
		top = math.Min(top, box.top+ph-h)
		g.Band = &geomRect{X: num(box.left), Y: num(top), W: num(pw), H: num(h)}
	}
	last := ""
	for _, t := range niceTicks(lo, hi, 4) {
		if t.label != last {
			g.YTicks = append(g.YTicks, tick{Pos: num(y(t.v)), Label: t.label})
			last = t.label
		}
	}
	g.XTicks = timeTicks(t0, t1, x)
	return g
}

// plotPoints are the points a chart can place: a finite value and a
// collection time. The slice is shared when every point can be placed.
func plotPoints(pts []Point) []Point {
	for i, p := range pts {
		if !plottable(p) {
			out := append(make([]Point, 0, len(pts)-1), pts[:i]...)
			for _, p := range pts[i+1:] {
				if plottable(p) {
					out = append(out, p)
				}
			}
			return out
		}
	}
	return pts
}

// plottable reports whether a chart can place p.
func plottable(p Point) bool { return finite(p.Value) && !p.At.IsZero() }

// finiteOrNil is f when it points to a finite number, else nil.
func finiteOrNil(f *float64) *float64 {
	if f == nil || !finite(*f) {
		return nil
	}
	return f
}

// flatTolerance is the relative difference below which values are drawn level:
// no lab reports nine significant digits, and a one-ulp difference
// (0.3 and 0.30000000000000004) must not look like a change.
const flatTolerance = 1e-9

// valueAxis returns the bounds of the value axis: the values and the band
// limits with a margin of 8% each side, or, when they are level, centred with
// a margin of 10% of their value (at least 1). The bounds are finite, lo < hi,
// and no step overflows, even from -1e308 to 1e308.
func valueAxis(pts []Point, low, high *float64) (lo, hi float64) {
	lo, hi = pts[0].Value, pts[0].Value
	for _, p := range pts {
		lo, hi = math.Min(lo, p.Value), math.Max(hi, p.Value)
	}
	for _, b := range []*float64{low, high} {
		if b != nil {
			lo, hi = math.Min(lo, *b), math.Max(hi, *b)
		}
	}
	mid, half := lo/2+hi/2, hi/2-lo/2
	if half <= flatTolerance*math.Max(math.Abs(lo), math.Abs(hi)) {
		half = math.Max(math.Abs(mid)*0.1, 1)
	} else {
		half *= 1.16
	}
	return clampFloat(mid - half), clampFloat(mid + half)
}

// clampFloat brings ±Inf back to the largest finite float of that sign.
func clampFloat(f float64) float64 { return math.Max(-math.MaxFloat64, math.Min(f, math.MaxFloat64)) }

// fraction is where v lies between lo and hi (lo < hi), from 0 to 1, computed
// without overflow.
func fraction(v, lo, hi float64) float64 {
	n, d := v-lo, hi-lo
	if math.IsInf(n, 0) || math.IsInf(d, 0) {
		n, d = v/2-lo/2, hi/2-lo/2
	}
	f := n / d
	if !(f > 0) {
		return 0
	}
	return math.Min(f, 1)
}

// seconds is t in seconds since 1970 as a float.
func seconds(t time.Time) float64 { return float64(t.Unix()) + float64(t.Nanosecond())/1e9 }

// valueTick is a round value of the value axis and its label.
type valueTick struct {
	v     float64
	label string
}

// niceTicks returns at most n+2 round values between lo and hi: multiples of
// a step of 1, 2, 2.5 or 5 times a power of ten, each with a label that shows
// the value to the step's precision. It loops once per tick, whatever the
// values' magnitude; when lo and hi are not finite, or so close that no step
// separates them, it returns nil.
func niceTicks(lo, hi float64, n int) []valueTick {
	if n < 1 || !(hi > lo) || !finite(lo) || !finite(hi) {
		return nil
	}
	// Halves first, so that hi-lo cannot overflow (-1e308 to 1e308).
	raw := hi/float64(n) - lo/float64(n)
	if !(raw > 0) || !finite(raw) {
		return nil
	}
	e := decExp(raw)
	// The step is m × 10^exp; exp is also the position of its last digit.
	step, exp := 0.0, 0
	for _, c := range [...]struct{ m, e int }{{1, e}, {2, e}, {25, e - 1}, {5, e}, {1, e + 1}} {
		step, exp = float64(c.m)*math.Pow10(c.e), c.e
		if step >= raw {
			break
		}
	}
	if !(step > 0) || !finite(step) {
		return nil
	}
	first, last := math.Ceil(lo/step), math.Floor(hi/step)
	count := last - first + 1
	// In exact arithmetic count <= n+1; more means the step is below the
	// values' precision (the float spacing), and then no tick is useful.
	if !(count >= 1 && count <= float64(n+2)) {
		return nil
	}
	out := make([]valueTick, 0, int(count))
	for i := range int(count) {
		v := (first + float64(i)) * step
		if v == 0 {
			v = 0 // never -0
		}
		if !finite(v) || (len(out) > 0 && v <= out[len(out)-1].v) {
			continue
		}
		out = append(out, valueTick{v: v, label: decimalLabel(v, exp)})
	}
	return out
}

// finite reports whether f is neither NaN nor infinite.
func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

// decimalLabel writes v to the decimal digit at 10^exp: plain digits
// ("0.25", "1200", "-3") from 10^-6 up to 10^15, scientific notation
// ("2.5e-17", "1e+308") beyond, with at most 17 significant digits, so a
// label is never longer than 26 bytes. It never writes NaN or Inf.
func decimalLabel(v float64, exp int) string {
	if !finite(v) {
		return ""
	}
	if v == 0 {
		return "0"
	}
	prec := min(max(decExp(v)-exp+1, 1), 17)
	// 'e' gives d.ddde±XX rounded to prec digits: the digits and the exponent
	// of the rounded value.
	s := strconv.FormatFloat(v, 'e', prec-1, 64)
	sign := ""
	if s[0] == '-' {
		sign, s = "-", s[1:]
	}
	mant, expText, _ := strings.Cut(s, "e")
	x, _ := strconv.Atoi(expText)
	digits := strings.TrimRight(strings.Replace(mant, ".", "", 1), "0")
	if digits == "" {
		return "0"
	}
	switch {
	case x >= 15 || x < -6:
		out := sign + digits[:1]
		if len(digits) > 1 {
			out += "." + digits[1:]
		}
		if x < 0 {
			return out + "e-" + twoDigits(-x)
		}
		return out + "e+" + twoDigits(x)
	case x < 0:
		return sign + "0." + strings.Repeat("0", -x-1) + digits
	case len(digits) <= x+1:
		return sign + digits + strings.Repeat("0", x+1-len(digits))
	default:
		return sign + digits[:x+1] + "." + digits[x+1:]
	}
}

// decExp is the decimal exponent of f (finite, not zero): 2 for 345, -17 for
// 2.5e-17. math.Log10 is not used: it is wrong for subnormal numbers.
func decExp(f float64) int {
	s := strconv.FormatFloat(f, 'e', -1, 64)
	x, _ := strconv.Atoi(s[strings.LastIndexByte(s, 'e')+1:])
	return x
}

// twoDigits writes n with at least two digits, as exponents are written.
func twoDigits(n int) string {
	if n < 10 {
		return "0" + strconv.Itoa(n)
	}
	return strconv.Itoa(n)
}

// timeTicks labels the time axis with up to five evenly spaced dates, in a
// format that is unambiguous at the span shown, each label once, all in t0's
// zone.
func timeTicks(t0, t1 time.Time, x func(time.Time) float64) []tick {
	span := seconds(t1) - seconds(t0)
	if !(span > 0) {
		return []tick{{Pos: num(x(t0)), Label: t0.Format("2006-01-02")}}
	}
	const day = 24 * 60 * 60
	layout := "2006-01-02"
	if span > 3*365*day {
		layout = "2006"
	} else if span > 120*day {
		layout = "2006-01"
	}
	var out []tick
	last := ""
	for i := 0; i <= 4; i++ {
		t := t1.In(t0.Location())
		if i < 4 {
			t = addSeconds(t0, span*float64(i)/4)
		}
		label := t.Format(layout)
		if label == last {
			continue
		}
		last = label
		out = append(out, tick{Pos: num(x(t)), Label: label})
	}
	return out
}

// addSeconds is t plus s seconds (s >= 0, within years 1 to 9999).
func addSeconds(t time.Time, s float64) time.Time {
	whole := math.Floor(s)
	ns := int64(t.Nanosecond()) + int64((s-whole)*1e9)
	return time.Unix(t.Unix()+int64(whole), ns).In(t.Location())
}
