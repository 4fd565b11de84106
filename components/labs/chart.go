package labs

import (
	"math"
	"strconv"
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
func num(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) }

// layoutChart places c's points in box: time on x, value on y. The value axis
// spans the values and the reference band, so the band is always drawn whole.
func layoutChart(c Chart, box chartBox) chartGeom {
	g := chartGeom{W: num(box.w), H: num(box.h)}
	pw, ph := box.w-box.left-box.right, box.h-box.top-box.bottom
	g.PlotX, g.PlotY, g.PlotW, g.PlotH = num(box.left), num(box.top), num(pw), num(ph)
	g.Baseline, g.Left, g.Right = num(box.top+ph), num(box.left), num(box.left+pw)
	if len(c.Points) == 0 {
		return g
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	t0, t1 := c.Points[0].At, c.Points[0].At
	for _, p := range c.Points {
		lo, hi = math.Min(lo, p.Value), math.Max(hi, p.Value)
		if p.At.Before(t0) {
			t0 = p.At
		}
		if p.At.After(t1) {
			t1 = p.At
		}
	}
	if c.Low != nil {
		lo, hi = math.Min(lo, *c.Low), math.Max(hi, *c.Low)
	}
	if c.High != nil {
		lo, hi = math.Min(lo, *c.High), math.Max(hi, *c.High)
	}
	if hi == lo {
		pad := math.Max(math.Abs(hi)*0.1, 1)
		lo, hi = lo-pad, hi+pad
	} else {
		pad := (hi - lo) * 0.08
		lo, hi = lo-pad, hi+pad
	}
	y := func(v float64) float64 { return box.top + ph - (v-lo)/(hi-lo)*ph }
	span := t1.Sub(t0)
	x := func(t time.Time) float64 {
		if span <= 0 {
			return box.left + pw/2
		}
		return box.left + float64(t.Sub(t0))/float64(span)*pw
	}
	line := make([]byte, 0, len(c.Points)*12)
	for i, p := range c.Points {
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
	if c.Low != nil || c.High != nil {
		top, bottom := box.top, box.top+ph
		if c.High != nil {
			top = y(*c.High)
		}
		if c.Low != nil {
			bottom = y(*c.Low)
		}
		g.Band = &geomRect{X: num(box.left), Y: num(top), W: num(pw), H: num(math.Max(bottom-top, 1))}
	}
	for _, v := range niceTicks(lo, hi, 4) {
		g.YTicks = append(g.YTicks, tick{Pos: num(y(v)), Label: strconv.FormatFloat(v, 'f', -1, 64)})
	}
	g.XTicks = timeTicks(t0, t1, x)
	return g
}

// niceTicks returns about n round values between lo and hi.
func niceTicks(lo, hi float64, n int) []float64 {
	if !(hi > lo) || n < 1 {
		return nil
	}
	raw := (hi - lo) / float64(n)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	var out []float64
	for v := math.Ceil(lo/step) * step; v <= hi+step*1e-9; v += step {
		// Rounding keeps labels like 0.30000000000000004 out.
		out = append(out, math.Round(v/step)*step)
	}
	return out
}

// timeTicks labels the time axis with up to five evenly spaced dates, in a
// format that is unambiguous at the span shown.
func timeTicks(t0, t1 time.Time, x func(time.Time) float64) []tick {
	span := t1.Sub(t0)
	layout := "2006-01-02"
	if span > 3*365*24*time.Hour {
		layout = "2006"
	} else if span > 120*24*time.Hour {
		layout = "2006-01"
	}
	if span <= 0 {
		return []tick{{Pos: num(x(t0)), Label: t0.Format("2006-01-02")}}
	}
	var out []tick
	last := ""
	for i := 0; i <= 4; i++ {
		t := t0.Add(span * time.Duration(i) / 4)
		label := t.Format(layout)
		if label == last {
			continue
		}
		last = label
		out = append(out, tick{Pos: num(x(t)), Label: label})
	}
	return out
}
