package theme_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"smartlabs/server/theme"
)

// pair is one place the CSS draws a colour on a background, read from
// components/**/*.templ and frontend/app.css, with the contrast WCAG 2.1 AA
// asks of it: 4.5 for text, 3 for what identifies a control or a chart mark.
type pair struct {
	where  string
	fg, bg string
	min    float64
}

// pairs are written from the views, not from the theme's own table, so the
// two check each other.
var pairs = func() []pair {
	var ps []pair
	text := func(where, fg string, bgs ...string) {
		for _, bg := range bgs {
			ps = append(ps, pair{where, fg, bg, 4.5})
		}
	}
	graphic := func(where, fg string, bgs ...string) {
		for _, bg := range bgs {
			ps = append(ps, pair{where, fg, bg, 3})
		}
	}
	text("body text, headings, banner, notices, error boxes", "--sl-fg",
		"--sl-bg", "--sl-surface", "--sl-error-bg", "--sl-warning-bg", "--sl-info-bg")
	text("units, times, counts, labels, empty states, error refs", "--sl-muted", "--sl-bg", "--sl-surface", "--sl-error-bg")
	text("test links, view tabs, back link, Sign out", "--sl-accent", "--sl-bg", "--sl-error-bg")
	text("Refresh, Retry, error actions, Continue, the checked period", "--sl-accent-fg", "--sl-accent")
	text("critical values and the Critical results caption", "--sl-critical", "--sl-bg", "--sl-error-bg")
	text("critical flags", "--sl-critical-fg", "--sl-critical")
	text("high and abnormal values and flags", "--sl-high", "--sl-bg", "--sl-error-bg")
	text("low values and flags", "--sl-low", "--sl-bg", "--sl-error-bg")
	text("chart axis labels", "--sl-muted", "--sl-bg")
	graphic("Sign out and noscript Apply borders", "--sl-accent", "--sl-bg", "--sl-surface")
	graphic("focus ring", "--sl-focus", "--sl-bg", "--sl-surface", "--sl-error-bg", "--sl-warning-bg")
	graphic("checked period chip in the filters", "--sl-accent", "--sl-surface")
	graphic("outline of an unchecked period chip", "--sl-control", "--sl-bg", "--sl-surface")
	graphic("chart points", "--sl-accent", "--sl-bg", "--sl-band")
	graphic("abnormal chart points", "--sl-high", "--sl-bg", "--sl-band")
	graphic("critical chart points", "--sl-critical", "--sl-bg", "--sl-band")
	graphic("chart line", "--sl-muted", "--sl-bg", "--sl-band")
	graphic("critical row stripe", "--sl-critical", "--sl-bg")
	graphic("error box stripe", "--sl-error-border", "--sl-bg", "--sl-error-bg")
	graphic("incomplete banner and status note border", "--sl-warning-border", "--sl-bg", "--sl-warning-bg")
	graphic("info notice stripe", "--sl-info-border", "--sl-bg", "--sl-info-bg")
	return ps
}()

var (
	rootVar   = regexp.MustCompile(`(--sl-[a-z-]+):\s*([^;]+);`)
	declLine  = regexp.MustCompile(`(?m)^\s*(--sl-[a-z-]+):\s*([^;]+);$`)
	opaqueHex = regexp.MustCompile(`^#[0-9a-f]{6}$`)
)

// appDefaults are the variables of the first :root rule of frontend/app.css.
func appDefaults(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile("../../frontend/app.css")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	start := strings.Index(s, ":root {")
	end := strings.Index(s[start:], "}")
	if start < 0 || end < 0 {
		t.Fatal("no :root rule in frontend/app.css")
	}
	out := map[string]string{}
	for _, m := range rootVar.FindAllStringSubmatch(s[start:start+end], -1) {
		out[m[1]] = m[2]
	}
	return out
}

// declarations are the variables a theme stylesheet sets.
func declarations(css string) map[string]string {
	out := map[string]string{}
	for _, m := range declLine.FindAllStringSubmatch(css, -1) {
		out[m[1]] = m[2]
	}
	return out
}

// lum is the WCAG 2.x relative luminance of an opaque #rrggbb colour.
func lum(t *testing.T, hex string) float64 {
	t.Helper()
	if !opaqueHex.MatchString(hex) {
		t.Fatalf("colour %q is not opaque #rrggbb", hex)
	}
	var l float64
	for i, w := range []float64{0.2126, 0.7152, 0.0722} {
		v, _ := strconv.ParseUint(hex[1+2*i:3+2*i], 16, 8)
		c := float64(v) / 255
		if c <= 0.04045 {
			c /= 12.92
		} else {
			c = math.Pow((c+0.055)/1.055, 2.4)
		}
		l += w * c
	}
	return l
}

// ratio is the WCAG 2.x contrast ratio of two opaque colours.
func ratio(t *testing.T, a, b string) float64 {
	t.Helper()
	la, lb := lum(t, a), lum(t, b)
	return (math.Max(la, lb) + 0.05) / (math.Min(la, lb) + 0.05)
}

// shortfalls lists every pair below its contrast under a theme stylesheet:
// our defaults from frontend/app.css, overridden by the stylesheet.
func shortfalls(t *testing.T, defaults map[string]string, css string) []string {
	t.Helper()
	vals := map[string]string{}
	for k, v := range defaults {
		vals[k] = v
	}
	for k, v := range declarations(css) {
		vals[k] = v
	}
	var out []string
	for _, p := range pairs {
		if r := ratio(t, vals[p.fg], vals[p.bg]); r < p.min {
			out = append(out, fmt.Sprintf("%s: %s %s on %s %s is %.2f:1, want %.1f:1", p.where, p.fg, vals[p.fg], p.bg, vals[p.bg], r, p.min))
		}
	}
	return out
}

func TestDefaultsMeetEveryPair(t *testing.T) {
	for _, s := range shortfalls(t, appDefaults(t), "") {
		t.Error(s)
	}
}

// TestEHRColoursKeepContrast: whatever colours the EHR sends, every pair
// keeps its contrast; colours that already have it are used as sent, and a
// page background no text can reach 4.5:1 on is dropped.
func TestEHRColoursKeepContrast(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		// want are declarations the stylesheet must hold; absent those it must not.
		want   map[string]string
		absent []string
	}{
		{
			// Links and Sign out at 4.3:1 as sent.
			name: "mid-blue highlight on light grey",
			doc:  `{"color_background":"#e8e8e8","color_highlight":"#2e6db4","color_text":"#333333"}`,
			want: map[string]string{"--sl-bg": "#e8e8e8", "--sl-fg": "#333333", "--sl-focus": "#2e6db4"},
		},
		{
			name: "low-contrast EHR theme",
			doc: `{"color_background":"#e8e8e8","color_error":"#e06666","color_highlight":"#4a90d9",
				"color_modal_backdrop":"#00000066","color_success":"#6aa84f","color_text":"#7a7a7a"}`,
			want: map[string]string{"--sl-bg": "#e8e8e8", "--sl-backdrop": "#00000066"},
		},
		{
			name: "the simulator's own theme",
			doc: `{"color_background":"#eef1f4","color_error":"#b3261e","color_highlight":"#2a4d69",
				"color_modal_backdrop":"#1d273380","color_success":"#2e7d32","color_text":"#1d2733"}`,
			want: map[string]string{"--sl-bg": "#eef1f4", "--sl-fg": "#1d2733", "--sl-accent": "#2a4d69", "--sl-critical": "#b3261e"},
		},
		{
			name: "dark theme",
			doc:  `{"color_background":"#1e1e1e","color_text":"#e0e0e0","color_highlight":"#8ab4f8","color_error":"#f28b82","color_success":"#81c995"}`,
			want: map[string]string{"--sl-bg": "#1e1e1e", "--sl-fg": "#e0e0e0", "--sl-accent": "#8ab4f8", "--sl-critical": "#f28b82"},
		},
		{
			name: "dark theme with a dark highlight and dark text",
			doc:  `{"color_background":"#202124","color_text":"#3c4043","color_highlight":"#1a73e8","color_error":"#b3261e"}`,
			want: map[string]string{"--sl-bg": "#202124"},
		},
		{
			name: "light grey text on our white page",
			doc:  `{"color_text":"#cccccc"}`,
		},
		{
			name: "white on white",
			doc:  `{"color_background":"#ffffff","color_text":"#ffffff","color_highlight":"#ffffff","color_error":"#ffffff"}`,
		},
		{
			name: "yellow highlight",
			doc:  `{"color_highlight":"#ffeb3b"}`,
		},
		{
			name: "highlight as dark as the text",
			doc:  `{"color_background":"#f5f5f5","color_highlight":"#111111"}`,
			want: map[string]string{"--sl-accent": "#111111", "--sl-focus": "#111111"},
		},
		{
			// Composited over the page: 35% black on white is #a6a6a6.
			name: "translucent text and highlight",
			doc:  `{"color_text":"rgba(0, 0, 0, 0.35)","color_highlight":"#1d4ed880"}`,
		},
		{
			// Composited over white: 26/255 of black is #e5e5e5.
			name: "translucent background",
			doc:  `{"color_background":"#0000001a","color_text":"#000000"}`,
			want: map[string]string{"--sl-bg": "#e5e5e5", "--sl-fg": "#000000"},
		},
		{
			// Neither black nor white text reaches 4.5:1 on this page and its panels.
			name:   "mid-grey page",
			doc:    `{"color_background":"#777777","color_text":"#000000","color_highlight":"#3d8fd1"}`,
			absent: []string{"--sl-bg"},
			want:   map[string]string{"--sl-fg": "#000000"},
		},
		{
			name:   "invalid and absent colours",
			doc:    `{"color_background":"#12345","color_text":"rgb(0, 0)","color_highlight":null,"color_error":"transparent","dim_font_size":"14px"}`,
			want:   map[string]string{"--sl-font-size": "14px"},
			absent: []string{"--sl-bg", "--sl-fg", "--sl-accent", "--sl-critical"},
		},
	}
	defaults := appDefaults(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			css := string(theme.CSS([]byte(tt.doc)))
			for _, s := range shortfalls(t, defaults, css) {
				t.Error(s)
			}
			got := declarations(css)
			for k, v := range tt.want {
				if got[k] != v {
					t.Errorf("%s = %q, want %q", k, got[k], v)
				}
			}
			for _, k := range tt.absent {
				if v, ok := got[k]; ok {
					t.Errorf("%s = %q, want it left to our default", k, v)
				}
			}
			if t.Failed() {
				t.Logf("stylesheet:\n%s", css)
			}
		})
	}
}

// TestRandomEHRColoursKeepContrast tries many colour combinations, opaque
// and translucent, from a fixed seed: every pair keeps its contrast, and the
// same document always gives the same stylesheet.
func TestRandomEHRColoursKeepContrast(t *testing.T) {
	defaults := appDefaults(t)
	rng := rand.New(rand.NewPCG(10, 7))
	colour := func() string {
		switch rng.IntN(4) {
		case 0:
			return fmt.Sprintf("#%06x%02x", rng.IntN(1<<24), rng.IntN(256))
		case 1:
			return fmt.Sprintf("rgba(%d, %d, %d, 0.%d)", rng.IntN(256), rng.IntN(256), rng.IntN(256), rng.IntN(1000))
		default:
			return fmt.Sprintf("#%06x", rng.IntN(1<<24))
		}
	}
	n := 1000
	if testing.Short() {
		n = 100
	}
	for i := range n {
		var fields []string
		for _, k := range []string{"color_background", "color_text", "color_highlight", "color_error", "color_success"} {
			if rng.IntN(5) > 0 {
				fields = append(fields, fmt.Sprintf("%q:%q", k, colour()))
			}
		}
		doc := []byte("{" + strings.Join(fields, ",") + "}")
		css := string(theme.CSS(doc))
		if again := string(theme.CSS(doc)); again != css {
			t.Fatalf("document %d: two stylesheets for one document:\n%s\n%s", i, css, again)
		}
		if s := shortfalls(t, defaults, css); len(s) > 0 {
			t.Fatalf("document %d %s:\n%s", i, doc, strings.Join(s, "\n"))
		}
	}
}
