package theme

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// rgb is an opaque sRGB colour with 8-bit channels: what we emit, and what
// the browser draws.
type rgb struct{ r, g, b uint8 }

// rgba is a parsed colour whose alpha, from 0 to 1, may not be 1 yet.
type rgba struct {
	rgb
	a float64
}

// String is the colour as CSS: #rrggbb.
func (c rgb) String() string { return fmt.Sprintf("#%02x%02x%02x", c.r, c.g, c.b) }

// String is the colour as CSS: #rrggbb when opaque, else #rrggbbaa.
func (c rgba) String() string {
	if c.a >= 1 {
		return c.rgb.String()
	}
	return c.rgb.String() + fmt.Sprintf("%02x", uint8(math.Round(c.a*255)))
}

// parseColor reads a colour that passed the color pattern: #rgb, #rgba,
// #rrggbb, #rrggbbaa, or rgb()/rgba() with numbers (0-255) or percentages,
// not mixed. It refuses channels out of range.
func parseColor(s string) (rgba, bool) {
	if strings.HasPrefix(s, "#") {
		return parseHex(s[1:])
	}
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < open {
		return rgba{}, false
	}
	parts := strings.Split(s[open+1:end], ",")
	if len(parts) != 3 && len(parts) != 4 {
		return rgba{}, false
	}
	var ch [3]uint8
	pct := strings.HasSuffix(strings.TrimSpace(parts[0]), "%")
	for i := range 3 {
		p := strings.TrimSpace(parts[i])
		if strings.HasSuffix(p, "%") != pct {
			return rgba{}, false
		}
		n, err := strconv.Atoi(strings.TrimSuffix(p, "%"))
		switch {
		case err != nil || n < 0:
			return rgba{}, false
		case pct && n > 100, !pct && n > 255:
			return rgba{}, false
		case pct:
			ch[i] = uint8(math.Round(float64(n) * 255 / 100))
		default:
			ch[i] = uint8(n)
		}
	}
	a := 1.0
	if len(parts) == 4 {
		f, err := strconv.ParseFloat(strings.TrimSpace(parts[3]), 64)
		if err != nil || f < 0 || f > 1 {
			return rgba{}, false
		}
		a = f
	}
	return rgba{rgb{ch[0], ch[1], ch[2]}, a}, true
}

// parseHex reads the digits of a hex colour: 3, 4, 6 or 8 of them.
func parseHex(h string) (rgba, bool) {
	if len(h) == 3 || len(h) == 4 {
		var b strings.Builder
		for _, c := range h {
			b.WriteRune(c)
			b.WriteRune(c)
		}
		h = b.String()
	}
	if len(h) != 6 && len(h) != 8 {
		return rgba{}, false
	}
	n, err := strconv.ParseUint(h, 16, 32)
	if err != nil {
		return rgba{}, false
	}
	if len(h) == 6 {
		n = n<<8 | 0xff
	}
	return rgba{rgb{uint8(n >> 24), uint8(n >> 16), uint8(n >> 8)}, float64(uint8(n)) / 255}, true
}

// over is c drawn over the opaque colour under it (alpha compositing), as
// the browser would draw it.
func (c rgba) over(under rgb) rgb {
	if c.a >= 1 {
		return c.rgb
	}
	return mix(under, c.rgb, c.a)
}

// mix is from with t (0 to 1) of to mixed in, channel by channel in sRGB, as
// CSS color-mix(in srgb, ...) and alpha compositing do.
func mix(from, to rgb, t float64) rgb {
	ch := func(a, b uint8) uint8 { return uint8(math.Round(float64(a)*(1-t) + float64(b)*t)) }
	return rgb{ch(from.r, to.r), ch(from.g, to.g), ch(from.b, to.b)}
}

// linear is each 8-bit sRGB channel value made linear, as WCAG 2.x defines it.
var linear = func() (t [256]float64) {
	for v := range t {
		s := float64(v) / 255
		if s <= 0.04045 {
			t[v] = s / 12.92
		} else {
			t[v] = math.Pow((s+0.055)/1.055, 2.4)
		}
	}
	return t
}()

// luminance is the WCAG 2.x relative luminance of c, from 0 (black) to 1 (white).
func luminance(c rgb) float64 {
	return 0.2126*linear[c.r] + 0.7152*linear[c.g] + 0.0722*linear[c.b]
}

// contrast is the WCAG 2.x contrast ratio of two colours, from 1 to 21.
func contrast(a, b rgb) float64 {
	return ratio(luminance(a), luminance(b))
}

// ratio is the WCAG 2.x contrast ratio of two relative luminances.
func ratio(la, lb float64) float64 {
	if la < lb {
		la, lb = lb, la
	}
	return (la + 0.05) / (lb + 0.05)
}

// hsl is c as hue (0-360), saturation and lightness (0-1).
func (c rgb) hsl() (h, s, l float64) {
	r, g, b := float64(c.r)/255, float64(c.g)/255, float64(c.b)/255
	hi, lo := math.Max(r, math.Max(g, b)), math.Min(r, math.Min(g, b))
	l = (hi + lo) / 2
	d := hi - lo
	if d == 0 {
		return 0, 0, l
	}
	s = d / (1 - math.Abs(2*l-1))
	switch hi {
	case r:
		h = math.Mod((g-b)/d, 6)
	case g:
		h = (b-r)/d + 2
	default:
		h = (r-g)/d + 4
	}
	h *= 60
	if h < 0 {
		h += 360
	}
	return h, s, l
}

// fromHSL is the colour of hue h, saturation s and lightness l, rounded to 8 bits.
func fromHSL(h, s, l float64) rgb {
	c := (1 - math.Abs(2*l-1)) * s
	x := c * (1 - math.Abs(math.Mod(h/60, 2)-1))
	m := l - c/2
	var r, g, b float64
	switch {
	case h < 60:
		r, g, b = c, x, 0
	case h < 120:
		r, g, b = x, c, 0
	case h < 180:
		r, g, b = 0, c, x
	case h < 240:
		r, g, b = 0, x, c
	case h < 300:
		r, g, b = x, 0, c
	default:
		r, g, b = c, 0, x
	}
	ch := func(v float64) uint8 { return uint8(math.Round(math.Max(0, math.Min(1, v+m)) * 255)) }
	return rgb{ch(r), ch(g), ch(b)}
}
