package e2e_test

import (
	"fmt"
	"strings"
	"testing"

	"smartlabs/server/e2e"
	"smartlabs/server/ehrsim"
	"smartlabs/server/servertest"
)

// themedViews are the views TestAccessibilityUnderEHRTheme opens; a new view
// is one more row. A path is relative to the app; {launch} is the launch's
// labs URL path and {key} the key of a test with a chart. want is a selector
// the view must show, so a row checks the view it names. themed says whether
// the view links the EHR's theme: error pages and the signed-out page do not
// (they are checked all the same, so theming them later stays covered).
var themedViews = []struct {
	name, path, want string
	themed           bool
}{
	{"summary", "{launch}", `[data-testid=summary-line][data-critical] [data-testid=analyte-link]`, true},
	// Abnormal only: every flag colour, without making axe read all 640 rows.
	{"all results", "{launch}?view=all&abnormal=1", `[data-testid=result-row][data-critical]`, true},
	{"drill-down", "{launch}/a/{key}", `[data-testid=chart] [data-testid=chart-point]`, true},
	{"flowsheet", "{launch}?view=flowsheet", `[data-testid=flow-cell]`, true},
	{"error page", "{launch}/a/not-a-key", `[data-testid=error-title]`, false},
	{"signed out", "/signed-out", `[data-testid=error-title]`, false},
}

// contrastJS defines __e2eColor, which resolves a CSS colour (a value or a
// var()) as the page computes it, and __e2eRatio, the WCAG 2.x contrast ratio
// of two computed colours: the browser's view, independent of the server's code.
const contrastJS = `(() => {
	const lum = c => { const [r, g, b] = c.match(/\d+(\.\d+)?/g).slice(0, 3).map(Number).map(v => v / 255)
		.map(v => v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4); return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
	window.__e2eRatio = (a, b) => { const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p); return (x + 0.05) / (y + 0.05); };
	window.__e2eColor = v => { const e = document.createElement("i"); e.style.color = v; document.body.append(e);
		const c = getComputedStyle(e).color; e.remove(); return c; };
})()`

// TestAccessibilityUnderEHRTheme opens every view inside the EHR's cross-site
// frame while the EHR's smart_style_url sends a low-contrast theme, and runs
// axe-core's WCAG 2.1 A and AA rules on each at 360 px and 1280 px: no
// violation. On the themed views it also checks that the theme is in force
// and that the focus ring and the period chips' outlines keep 3:1.
func TestAccessibilityUnderEHRTheme(t *testing.T) {
	src := mustAxeSource(t)
	style := ehrsim.LowContrastStyle()
	env := servertest.New(t, servertest.Options{Switches: ehrsim.Switches{Style: style}})
	b := e2e.NewBrowser(t)
	tab := b.NewTab(t)
	openChart(t, env, tab, "Lin")
	waitIdle(t, tab)
	var key string
	mustEval(t, tab, `document.querySelector("[data-testid=summary-line]:has([data-testid=sparkline])").dataset.key`, &key)
	frameURL, err := tab.FrameURL(frame)
	if err != nil {
		t.Fatal(err)
	}
	launch := strings.TrimPrefix(frameURL, env.AppURL)
	if i := strings.IndexAny(launch, "?#"); i >= 0 {
		launch = launch[:i]
	}
	if !strings.HasPrefix(launch, "/l/") {
		t.Fatalf("frame URL = %q", frameURL)
	}
	// The style as sent is below AA: its highlight, text and error colours
	// are each under 4.5:1 against its background.
	mustEval(t, tab, contrastJS, nil)
	for _, k := range []string{"color_highlight", "color_text", "color_error"} {
		var r float64
		mustEval(t, tab, `__e2eRatio(__e2eColor(`+jsQuote(style[k])+`), __e2eColor(`+jsQuote(style["color_background"])+`))`, &r)
		t.Logf("MEASURE EHR %s %s on %s as sent: %.2f:1", k, style[k], style["color_background"], r)
		if r >= 4.5 {
			t.Fatalf("%s %s on %s: %.2f:1 as sent, want a style below 4.5:1", k, style[k], style["color_background"], r)
		}
	}

	inline := 0 // themed views that carried the theme inline
	for _, width := range []int{360, 1280} {
		if err := tab.SetViewport(width, 900); err != nil {
			t.Fatal(err)
		}
		for _, view := range themedViews {
			t.Run(fmt.Sprintf("%s at %d px", view.name, width), func(t *testing.T) {
				u := env.AppURL + strings.NewReplacer("{launch}", launch, "{key}", key).Replace(view.path)
				mustEval(t, tab, `location.href = `+jsQuote(u), nil)
				mustFrameURL(t, tab, u)
				waitLoaded(t, tab)
				waitIdle(t, tab)
				if n, err := tab.Count(frame, view.want); err != nil || n == 0 {
					t.Fatalf("%s shows no %s (%v)", u, view.want, err)
				}
				// Linked, or inline once the server holds it (allowed by its hash in the page's CSP).
				if n, _ := tab.Count(frame, `link[data-testid=theme], style[data-testid=theme]`); (n > 0) != view.themed {
					t.Fatalf("%s carries the EHR theme: %v, want %v", u, n > 0, view.themed)
				}
				if n, _ := tab.Count(frame, `style[data-testid=theme]`); n > 0 {
					inline++
				}
				if view.themed {
					checkThemeInForce(t, tab, style["color_background"])
				}
				for _, v := range mustAxe(t, tab, src) {
					t.Errorf("axe %s (%s) on %d elements, first:\n\t%s", v.ID, v.Impact, v.Count, strings.Join(v.Nodes, "\n\t"))
				}
			})
		}
	}
	// The first page linked the theme and its request fetched it; the views
	// after it carry it inline, and the browser applied it under the CSP.
	if inline == 0 {
		t.Error("no view carried the EHR theme inline once the server held it")
	}
}

// checkThemeInForce checks that the page's background is the EHR's (so the
// theme, linked or inline, was applied), and two contrasts axe does not
// check (WCAG 1.4.11): the focus ring against the page and the panels the CSS
// draws on it, and the outline of an unchecked period chip, which is all that
// shows it is a control, against its inside and the filters around it.
func checkThemeInForce(t *testing.T, tab *e2e.Tab, ehrBackground string) {
	t.Helper()
	mustEval(t, tab, contrastJS, nil)
	var got struct {
		Page  string             `json:"page"`
		Want  string             `json:"want"`
		Focus map[string]float64 `json:"focus"`
		Chip  map[string]float64 `json:"chip"`
	}
	mustEval(t, tab, `(() => {
		const page = getComputedStyle(document.body).backgroundColor, want = __e2eColor(`+jsQuote(ehrBackground)+`);
		const focus = {}, chip = {};
		for (const bg of ["--sl-bg", "--sl-surface", "--sl-error-bg", "--sl-warning-bg", "--sl-info-bg"]) {
			focus[bg] = __e2eRatio(__e2eColor("var(--sl-focus)"), __e2eColor("var(" + bg + ")"));
		}
		const c = document.querySelector(".sl-chip > input:not(:checked) + span");
		if (c) {
			const edge = getComputedStyle(c).borderTopColor;
			chip["its own background"] = __e2eRatio(edge, getComputedStyle(c).backgroundColor);
			chip["the filters"] = __e2eRatio(edge, getComputedStyle(c.closest("form")).backgroundColor);
		}
		return {page, want, focus, chip};
	})()`, &got)
	if got.Page != got.Want {
		t.Fatalf("page background = %s, want the EHR's %s: the theme is not in force", got.Page, got.Want)
	}
	for bg, r := range got.Focus {
		if r < 3 {
			t.Errorf("focus ring on %s: %.2f:1, want at least 3:1", bg, r)
		}
	}
	for bg, r := range got.Chip {
		if r < 3 {
			t.Errorf("outline of an unchecked period chip against %s: %.2f:1, want at least 3:1", bg, r)
		}
	}
}
