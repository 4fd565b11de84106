package labs

import (
	"math"
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
