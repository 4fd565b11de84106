package theme

import (
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestContrastKnownValues(t *testing.T) {
	white, black := rgb{255, 255, 255}, rgb{0, 0, 0}
	tests := []struct {
		a, b rgb
		want float64
	}{
		{black, white, 21},
		{white, white, 1},
		{rgb{0x76, 0x76, 0x76}, white, 4.54}, // the lightest grey that passes AA on white
		{rgb{0x77, 0x77, 0x77}, white, 4.48},
		{rgb{0x94, 0x94, 0x94}, white, 3.03},
		{rgb{0x1d, 0x4e, 0xd8}, white, 6.70},
		{rgb{0xff, 0x00, 0x00}, white, 4.00},
		{rgb{0x00, 0x00, 0xff}, black, 2.44},
	}
	for _, tt := range tests {
		got := contrast(tt.a, tt.b)
		if math.Abs(got-tt.want) > 0.005 || contrast(tt.b, tt.a) != got {
			t.Errorf("contrast(%v, %v) = %.3f, want %.2f either way round", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestParseColor(t *testing.T) {
	tests := []struct {
		in   string
		want string // "" means refused
	}{
		{"#fff", "#ffffff"},
		{"#ABC", "#aabbcc"},
		{"#0008", "#00000088"},
		{"#3d8fd1", "#3d8fd1"},
		{"#3d8fd1ff", "#3d8fd1"},
		{"#3d8fd180", "#3d8fd180"},
		{"rgb(46, 125, 50)", "#2e7d32"},
		{"rgb(100%,0%,50%)", "#ff0080"},
		{"rgba(0, 0, 0, 0.4)", "#00000066"},
		{"rgba(0, 0, 0, 1)", "#000000"},
		{"rgba(0, 0, 0, 0)", "#00000000"},
		{"rgb(256, 0, 0)", ""},
		{"rgb(101%, 0%, 0%)", ""},
		{"rgb(10%, 20, 30)", ""},
		{"rgb(1, 2)", ""},
		{"rgba(0, 0, 0, 1.5)", ""},
		{"#12345", ""},
		{"#ggg", ""},
	}
	for _, tt := range tests {
		c, ok := parseColor(tt.in)
		got := ""
		if ok {
			got = c.String()
		}
		if got != tt.want {
			t.Errorf("parseColor(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestComposite(t *testing.T) {
	c, _ := parseColor("rgba(0, 0, 0, 0.35)")
	if got := c.over(rgb{255, 255, 255}).String(); got != "#a6a6a6" {
		t.Errorf("35%% black over white = %s, want #a6a6a6", got)
	}
	c, _ = parseColor("#1d4ed880")
	if got := c.over(rgb{0xe8, 0xe8, 0xe8}).String(); got != "#829be0" {
		t.Errorf("half #1d4ed8 over #e8e8e8 = %s, want #829be0", got)
	}
}

func TestHSLRoundTrip(t *testing.T) {
	for r := 0; r < 256; r += 15 {
		for g := 0; g < 256; g += 17 {
			for b := 0; b < 256; b += 5 {
				c := rgb{uint8(r), uint8(g), uint8(b)}
				if got := fromHSL(c.hsl()); got != c {
					t.Fatalf("fromHSL(%v.hsl()) = %v", c, got)
				}
			}
		}
	}
}

// TestAdjust: an adjusted colour keeps its hue and saturation, meets its
// need, and is the nearest lightness that does.
func TestAdjust(t *testing.T) {
	tests := []struct {
		name   string
		c, bg  rgb
		min    float64
		darker bool
	}{
		{"mid-blue text on light grey", rgb{0x3d, 0x8f, 0xd1}, rgb{0xe8, 0xe8, 0xe8}, textMin, true},
		{"mid-blue focus ring on light grey", rgb{0x3d, 0x8f, 0xd1}, rgb{0xe8, 0xe8, 0xe8}, graphicMin, true},
		{"dark red text on near black", rgb{0x92, 0x40, 0x0e}, rgb{0x1e, 0x1e, 0x1e}, textMin, false},
		{"white text on a light blue button", rgb{255, 255, 255}, rgb{0x8a, 0xb4, 0xf8}, textMin, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			needs := []need{{luminance(tt.bg), tt.min}}
			if meets(tt.c, needs) {
				t.Fatalf("%v already has %.1f:1 on %v", tt.c, tt.min, tt.bg)
			}
			got, ok := adjust(tt.c, needs)
			if !ok || contrast(got, tt.bg) < tt.min {
				t.Fatalf("adjust = %v, %v: %.2f:1", got, ok, contrast(got, tt.bg))
			}
			h0, s0, l0 := tt.c.hsl()
			h1, s1, l1 := got.hsl()
			if s0 > 0 && (math.Abs(h0-h1) > 2 || math.Abs(s0-s1) > 0.03) {
				t.Errorf("hue %.1f -> %.1f, saturation %.2f -> %.2f: not along its own hue", h0, h1, s0, s1)
			}
			if (l1 < l0) != tt.darker {
				t.Errorf("lightness %.3f -> %.3f, want darker %v", l0, l1, tt.darker)
			}
			// One step back towards the colour as sent falls short.
			step := 0.001
			if tt.darker {
				step = -step
			}
			if back := fromHSL(h1, s1, l1-step); back != got && meets(back, needs) {
				t.Errorf("%v meets the need too and is nearer than %v", back, got)
			}
			t.Logf("%v (%.2f:1) -> %v (%.2f:1)", tt.c, contrast(tt.c, tt.bg), got, contrast(got, tt.bg))
		})
	}
}

// TestPalette checks the table itself: every colour an EHR key sets is in
// it, each colour is resolved after the backgrounds it is drawn on, and
// either owes contrast or says why not.
func TestPalette(t *testing.T) {
	seen := map[string]int{}
	for i, c := range palette {
		if _, dup := seen[c.name]; dup {
			t.Errorf("%s is in the palette twice", c.name)
		}
		seen[c.name] = i
		owes := len(c.text)+len(c.graphic) > 0
		if owes == (c.ground != "") {
			t.Errorf("%s: owes contrast %v and ground %q; want exactly one", c.name, owes, c.ground)
		}
		for _, u := range append(append([]string{}, c.text...), c.graphic...) {
			if j, ok := seen[u]; !ok || j >= i {
				t.Errorf("%s is drawn on %s, which is not resolved before it", c.name, u)
			}
		}
		if _, ok := parseColor(c.def); !ok {
			t.Errorf("%s: bad default %q", c.name, c.def)
		}
	}
	for _, c := range palette {
		if _, ok := seen[c.tint]; c.tint != "" && !ok {
			t.Errorf("%s is tinted with %s, not in the palette", c.name, c.tint)
		}
	}
	for k, m := range keys {
		for _, v := range m.vars {
			if _, ok := seen[v]; (m.kind == color) != ok {
				t.Errorf("%s sets %s: colour %v, in the palette %v", k, v, m.kind == color, ok)
			}
		}
	}
}

// appCSS is frontend/app.css and its first :root rule.
func appCSS(t *testing.T) (all, root string) {
	t.Helper()
	b, err := os.ReadFile("../../frontend/app.css")
	if err != nil {
		t.Fatal(err)
	}
	all = string(b)
	start := strings.Index(all, ":root {")
	if start < 0 {
		t.Fatal("no :root rule in frontend/app.css")
	}
	return all, all[start : start+strings.Index(all[start:], "}")]
}

// TestPaletteMatchesAppCSS: the palette's defaults are frontend/app.css's,
// and every colour variable there is in the palette.
func TestPaletteMatchesAppCSS(t *testing.T) {
	_, root := appCSS(t)
	inCSS := map[string]string{}
	for _, m := range regexp.MustCompile(`(--sl-[a-z-]+):\s*([^;]+);`).FindAllStringSubmatch(root, -1) {
		if _, ok := parseColor(m[2]); ok {
			inCSS[m[1]] = m[2]
		}
	}
	for _, c := range palette {
		if inCSS[c.name] != c.def {
			t.Errorf("%s: palette default %q, frontend/app.css %q", c.name, c.def, inCSS[c.name])
		}
		delete(inCSS, c.name)
	}
	for name, v := range inCSS {
		t.Errorf("frontend/app.css colour %s: %s is not in the palette", name, v)
	}
}

// TestViewsUseCoveredColours reads every template and frontend/app.css: a
// colour used as text owes text contrast in the palette, one used as a
// background is one, a focus ring owes contrast, and one used as a border,
// stroke or fill either owes contrast or is a background. A new colour, or an old one in a new role,
// fails here until the palette says what it is drawn on.
func TestViewsUseCoveredColours(t *testing.T) {
	byName := map[string]colour{}
	under := map[string]bool{}
	for _, c := range palette {
		byName[c.name] = c
		for _, u := range append(append([]string{}, c.text...), c.graphic...) {
			under[u] = true
		}
	}
	check := func(where, role, name string) {
		c, ok := byName[name]
		if !ok {
			t.Errorf("%s: %s uses %s, which is not in the palette", where, role, name)
			return
		}
		isGround := c.ground != "" || under[name]
		switch role {
		case "text", "decoration", "placeholder", "caret":
			if len(c.text) == 0 {
				t.Errorf("%s: %s is drawn as text (%s-) but owes no text contrast in the palette", where, name, role)
			}
		case "bg", "from", "via", "to":
			if !isGround {
				t.Errorf("%s: %s is drawn as a background (%s-) but nothing in the palette is drawn on it", where, name, role)
			}
		case "outline", "ring", "accent":
			if len(c.text)+len(c.graphic) == 0 {
				t.Errorf("%s: %s is drawn as a focus ring or control (%s-) but owes no contrast in the palette", where, name, role)
			}
		default:
			if len(c.text)+len(c.graphic) == 0 && !isGround {
				t.Errorf("%s: %s is drawn as %s- but owes no contrast in the palette", where, name, role)
			}
		}
	}

	class := regexp.MustCompile(`\b(text|bg|border(?:-[lrtbxyse])?|outline|ring|stroke|fill|decoration|divide|placeholder|caret|accent|from|via|to)-sl-([a-z]+(?:-[a-z]+)*)`)
	n := 0
	err := filepath.WalkDir("../../components", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".templ") {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range class.FindAllStringSubmatch(string(b), -1) {
			role := m[1]
			if strings.HasPrefix(role, "border") {
				role = "border"
			}
			check(filepath.Base(path), role, "--sl-"+m[2])
			n++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 50 {
		t.Fatalf("found %d colour classes in components/**/*.templ, want the templates' dozens", n)
	}

	// Plain CSS in frontend/app.css: a property and the variable it reads.
	all, _ := appCSS(t)
	decl := regexp.MustCompile(`(?m)^\s*(color|background(?:-color)?|border(?:-(?:top|right|bottom|left))?(?:-color)?|outline(?:-color)?|fill|stroke):[^;]*var\((--sl-[a-z-]+)\)`)
	roles := map[string]string{"color": "text", "background": "bg", "background-color": "bg", "fill": "fill", "stroke": "stroke"}
	m := decl.FindAllStringSubmatch(all, -1)
	for _, d := range m {
		role, ok := roles[d[1]]
		switch {
		case ok:
		case strings.HasPrefix(d[1], "outline"):
			role = "outline"
		default:
			role = "border"
		}
		check("frontend/app.css", role, d[2])
	}
	if len(m) < 5 {
		t.Fatalf("found %d colour declarations in frontend/app.css, want its handful", len(m))
	}
}
