package theme

// Minimum contrast ratios of WCAG 2.1 AA.
const (
	// textMin is for text (1.4.3); all our text is normal size.
	textMin = 4.5
	// graphicMin is for what identifies a control or carries meaning
	// without words: borders of buttons, focus rings, chart marks (1.4.11).
	graphicMin = 3.0
)

// colour is one colour variable of frontend/app.css and where it is drawn.
type colour struct {
	// name is the CSS variable and def its value in frontend/app.css.
	name, def string
	// text are the backgrounds it is drawn on as text, needing textMin
	// against each; graphic those it is drawn on as a border, a focus ring
	// or a chart mark, needing graphicMin.
	text, graphic []string
	// tint, for a background, is the colour mixed into the EHR's page
	// background, and part how much of it, when the EHR sets --sl-bg: the
	// panel then follows the page, light or dark.
	tint string
	part float64
	// ground, for a colour that needs no contrast of its own, says why.
	ground string
	// translucent keeps the alpha the EHR sent; every other colour is
	// composited over the page background and emitted opaque.
	translucent bool
}

// panels are the backgrounds text is drawn on: the page and every panel on it.
var panels = []string{"--sl-bg", "--sl-surface", "--sl-error-bg", "--sl-warning-bg", "--sl-info-bg"}

// palette is every colour variable of frontend/app.css, in the order they are
// resolved: backgrounds first, and each foreground after the backgrounds it
// is drawn on. It is the one table of contrast rules: a colour variable not
// in it is never emitted (and a test fails).
var palette = []colour{
	{name: "--sl-bg", def: "#ffffff", ground: "the page"},
	{name: "--sl-surface", def: "#f3f4f6", tint: "--sl-fg", part: 0.05, ground: "panels: patient banner, filters, empty states"},
	{name: "--sl-error-bg", def: "#fef2f2", tint: "--sl-critical", part: 0.06, ground: "critical rows and error boxes"},
	{name: "--sl-warning-bg", def: "#fffbeb", tint: "--sl-warning-border", part: 0.08, ground: "the incomplete-list banner and status notes"},
	{name: "--sl-info-bg", def: "#eff6ff", tint: "--sl-info-border", part: 0.06, ground: "information notices"},
	{name: "--sl-band", def: "#dcfce7", tint: "--sl-success", part: 0.15, ground: "the reference band of charts"},
	// Outlines of controls (period chips, the search box, the selects) are
	// --sl-control; this colour only separates rows and panels.
	{name: "--sl-border", def: "#d1d5db", tint: "--sl-fg", part: 0.2, ground: "separators between rows and chart grid lines, which are decoration"},
	{name: "--sl-backdrop", def: "#1f293780", translucent: true, ground: "behind a dialog, never behind text"},

	{name: "--sl-fg", def: "#1f2937", text: panels},
	// Secondary text; the line and axis labels of charts.
	{name: "--sl-muted", def: "#4b5563", text: panels, graphic: []string{"--sl-band"}},
	// Links, view tabs and the Sign out button; chart points.
	{name: "--sl-accent", def: "#1d4ed8", text: panels, graphic: []string{"--sl-band"}},
	{name: "--sl-focus", def: "#1d4ed8", graphic: panels},
	// The outline of a control: what shows an unchecked period chip is one.
	{name: "--sl-control", def: "#6b7280", graphic: panels},
	{name: "--sl-critical", def: "#b91c1c", text: panels, graphic: []string{"--sl-band"}},
	{name: "--sl-high", def: "#92400e", text: panels, graphic: []string{"--sl-band"}},
	{name: "--sl-low", def: "#1e40af", text: panels},
	{name: "--sl-success", def: "#15803d", text: panels},
	// The stripes that mark critical rows and notices, beside their words.
	{name: "--sl-error-border", def: "#b91c1c", graphic: []string{"--sl-bg", "--sl-error-bg"}},
	{name: "--sl-warning-border", def: "#d97706", graphic: []string{"--sl-bg", "--sl-warning-bg"}},
	{name: "--sl-info-border", def: "#2563eb", graphic: []string{"--sl-bg", "--sl-info-bg"}},
	// Text of filled buttons, checked period chips and critical flags.
	{name: "--sl-accent-fg", def: "#ffffff", text: []string{"--sl-accent"}},
	{name: "--sl-critical-fg", def: "#ffffff", text: []string{"--sl-critical"}},
}

// need is one contrast a colour owes: min against the colour under it, given
// by its luminance.
type need struct {
	under, min float64
}

// needs are the contrasts c owes, against the values resolved so far.
func (c colour) needs(vals map[string]rgba) []need {
	var out []need
	for _, u := range c.text {
		out = append(out, need{luminance(vals[u].rgb), textMin})
	}
	for _, u := range c.graphic {
		out = append(out, need{luminance(vals[u].rgb), graphicMin})
	}
	return out
}

// meets reports whether fg has every contrast in needs.
func meets(fg rgb, needs []need) bool {
	l := luminance(fg)
	for _, n := range needs {
		if ratio(l, n.under) < n.min {
			return false
		}
	}
	return true
}

// adjust moves c along its own hue, keeping its saturation, to the nearest
// lightness (in steps of 0.1%, darker first on a tie) that meets every need.
// It reports false when no lightness does.
func adjust(c rgb, needs []need) (rgb, bool) {
	h, s, l := c.hsl()
	for i := 1; i <= 1000; i++ {
		d := float64(i) / 1000
		for _, cand := range [2]float64{l - d, l + d} {
			if cand < 0 || cand > 1 {
				continue
			}
			if x := fromHSL(h, s, cand); meets(x, needs) {
				return x, true
			}
		}
	}
	return rgb{}, false
}

// defaults are the palette's default values, parsed.
func defaults() map[string]rgba {
	vals := make(map[string]rgba, len(palette))
	for _, c := range palette {
		v, ok := parseColor(c.def)
		if !ok {
			panic("theme: bad default colour " + c.name + ": " + c.def)
		}
		vals[c.name] = v
	}
	return vals
}

// resolve returns the value of every colour variable for the EHR's colours
// (sent, by variable): the EHR's page background composited over white, its
// other colours over that background; panel backgrounds tinted from the EHR's
// page background when it sent one; then every colour that owes contrast,
// in palette order, kept when it has it, else moved along its hue until it
// does (adjust), else our default when that has it. It reports false when
// some colour still lacks its contrast: only a page background that no text
// colour can reach 4.5:1 on does that.
func resolve(sent map[string]rgba) (map[string]rgba, bool) {
	vals := defaults()
	white := rgb{255, 255, 255}
	if bg, ok := sent["--sl-bg"]; ok {
		vals["--sl-bg"] = rgba{bg.over(white), 1}
	}
	page := vals["--sl-bg"].rgb
	for _, c := range palette {
		v, ok := sent[c.name]
		if !ok || c.name == "--sl-bg" {
			continue
		}
		if !c.translucent {
			v = rgba{v.over(page), 1}
		}
		vals[c.name] = v
	}
	if _, ok := sent["--sl-bg"]; ok {
		for _, c := range palette {
			if c.tint != "" {
				vals[c.name] = rgba{mix(page, vals[c.tint].rgb, c.part), 1}
			}
		}
	}
	def := defaults()
	all := true
	for _, c := range palette {
		needs := c.needs(vals)
		if meets(vals[c.name].rgb, needs) {
			continue
		}
		if v, ok := adjust(vals[c.name].rgb, needs); ok {
			vals[c.name] = rgba{v, 1}
		} else if meets(def[c.name].rgb, needs) {
			vals[c.name] = def[c.name]
		} else {
			all = false
		}
	}
	return vals, all
}

// colours returns the colour variables to emit for the EHR's colours: those
// whose resolved value is not our default. When the EHR's page background
// leaves some colour without its contrast, that background is dropped; if
// that is not enough either, every EHR colour is (our defaults meet every
// rule).
func colours(sent map[string]rgba) map[string]string {
	vals, ok := resolve(sent)
	if !ok {
		without := make(map[string]rgba, len(sent))
		for k, v := range sent {
			if k != "--sl-bg" {
				without[k] = v
			}
		}
		if vals, ok = resolve(without); !ok {
			vals, _ = resolve(nil)
		}
	}
	def := defaults()
	out := map[string]string{}
	for _, c := range palette {
		if v := vals[c.name]; v.String() != def[c.name].String() {
			out[c.name] = v.String()
		}
	}
	return out
}
