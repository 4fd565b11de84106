package layout_test

import (
	"encoding/json"
	"testing"

	"github.com/PuerkitoBio/goquery"
	"github.com/a-h/templ"
	"github.com/google/go-cmp/cmp"

	"smartlabs/components/internal/htmlcheck"
	"smartlabs/components/layout"
	"smartlabs/static"
)

func TestPage(t *testing.T) {
	body := templ.Raw(`<p data-testid="body">hello</p>`) // A fixed test string, not FHIR data.
	tests := []struct {
		name      string
		props     layout.Props
		wantTitle string
		wantCSS   []string
		wantJS    string
	}{
		{
			name:      "given paths and theme",
			props:     layout.Props{Title: "Labs", CSSPath: "/static/app.1.css", JSPath: "/static/app.1.js", ThemePath: "/launch/L1/theme.css"},
			wantTitle: "Labs",
			wantCSS:   []string{"/static/app.1.css", "/launch/L1/theme.css"},
			wantJS:    "/static/app.1.js",
		},
		{
			name:      "defaults to the embedded build",
			props:     layout.Props{},
			wantTitle: "smartlabs",
			wantCSS:   []string{static.Path("app.css")},
			wantJS:    static.Path("app.js"),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			html := htmlcheck.MustRender(t, layout.Page(tt.props, body))
			doc := htmlcheck.MustParse(t, html)
			if got := html[:15]; got != "<!doctype html>" {
				t.Errorf("page starts with %q, want <!doctype html>", got)
			}
			if got := doc.Find("html").AttrOr("lang", ""); got != "en" {
				t.Errorf("lang = %q, want en", got)
			}
			if got := doc.Find("title").Text(); got != tt.wantTitle {
				t.Errorf("title = %q, want %q", got, tt.wantTitle)
			}
			if doc.Find(`meta[charset="utf-8"]`).Length() != 1 {
				t.Error("no meta charset")
			}
			if doc.Find(`meta[name="viewport"]`).Length() != 1 {
				t.Error("no meta viewport")
			}
			if got := doc.Find(`meta[name="referrer"]`).AttrOr("content", ""); got != "no-referrer" {
				t.Errorf("referrer meta = %q, want no-referrer", got)
			}
			var cfg map[string]any
			if err := json.Unmarshal([]byte(doc.Find(`meta[name="htmx-config"]`).AttrOr("content", "")), &cfg); err != nil {
				t.Fatalf("htmx-config is not JSON: %v", err)
			}
			for _, key := range []string{"includeIndicatorStyles", "allowEval", "allowScriptTags"} {
				if cfg[key] != false {
					t.Errorf("htmx-config %s = %v, want false", key, cfg[key])
				}
			}
			var css []string
			doc.Find(`link[rel="stylesheet"]`).Each(func(_ int, s *goquery.Selection) { css = append(css, s.AttrOr("href", "")) })
			if diff := cmp.Diff(tt.wantCSS, css); diff != "" {
				t.Errorf("stylesheets (-want +got):\n%s", diff)
			}
			script := doc.Find("script")
			if script.Length() != 1 || script.AttrOr("src", "") != tt.wantJS {
				t.Errorf("scripts: %d, src %q; want one with src %q", script.Length(), script.AttrOr("src", ""), tt.wantJS)
			}
			if _, ok := script.Attr("defer"); !ok {
				t.Error("script is not deferred")
			}
			if doc.Find(`main [data-testid="body"]`).Length() != 1 {
				t.Error("body is not inside <main>")
			}
			htmlcheck.AssertCSPSafe(t, doc)
		})
	}
}

// TestInlineTheme: the EHR's theme goes into the head as the one <style>
// element, in place of its link; a stylesheet that could end that element
// is never inlined, and the link stands instead.
func TestInlineTheme(t *testing.T) {
	const css = ":root {\n  --sl-bg: #eef1f4;\n}\n"
	doc := htmlcheck.MustParse(t, htmlcheck.MustRender(t, layout.Page(layout.Props{ThemeCSS: css, ThemePath: "/l/L1/theme.css"}, templ.NopComponent)))
	if s := doc.Find(`head style[data-testid="theme"]`); s.Length() != 1 || s.Text() != css {
		t.Errorf("inline theme: %d elements, text %q; want one with %q", s.Length(), s.Text(), css)
	}
	if n := doc.Find(`link[data-testid="theme"]`).Length(); n != 0 {
		t.Errorf("%d theme links beside the inline theme, want none", n)
	}

	const hostile = ":root { --sl-bg: #fff; }</style><script>alert(1)</script>"
	doc = htmlcheck.MustParse(t, htmlcheck.MustRender(t, layout.Page(layout.Props{ThemeCSS: hostile, ThemePath: "/l/L1/theme.css"}, templ.NopComponent)))
	if n := doc.Find("style").Length() + doc.Find("script:not([src])").Length(); n != 0 {
		t.Errorf("a stylesheet with '<' was inlined: %d style or inline script elements", n)
	}
	if got := doc.Find(`link[data-testid="theme"]`).AttrOr("href", ""); got != "/l/L1/theme.css" {
		t.Errorf("theme link = %q, want the stylesheet's URL in its place", got)
	}
}

// TestStyleHash: the CSP source of a stylesheet is its SHA-256 in base64.
func TestStyleHash(t *testing.T) {
	// The SHA-256 of the empty string.
	if got, want := layout.StyleHash(""), "'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='"; got != want {
		t.Errorf("StyleHash(\"\") = %s, want %s", got, want)
	}
}
