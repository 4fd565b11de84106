package errorpage_test

import (
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"
	"github.com/google/go-cmp/cmp"

	"smartlabs/components/errorpage"
	"smartlabs/components/internal/htmlcheck"
	"smartlabs/components/layout"
)

// text is the whitespace-normalised text of s.
func text(s *goquery.Selection) string {
	return strings.Join(strings.Fields(s.Text()), " ")
}

type link struct{ Label, Href, Target, Rel string }

func TestErrorViews(t *testing.T) {
	props := errorpage.Props{
		Status:    403,
		Title:     "Cookies are blocked",
		Message:   "Your browser did not send back our cookie. Open the app in a new window.",
		RequestID: "req-42",
		Actions: []errorpage.Action{
			{Label: "Open in a new window", Href: "/launch/L1", NewWindow: true},
			{Label: "Try again", Href: "/launch/L1/labs"},
			{Label: "Bad", Href: "javascript:alert(1)"},
		},
	}
	wantLinks := []link{
		{"Open in a new window (opens in a new window)", "/launch/L1", "_blank", "noopener noreferrer"},
		{"Try again", "/launch/L1/labs", "", ""},
		{"Bad", "about:invalid#TemplFailedSanitizationURL", "", ""},
	}
	tests := []struct {
		name      string
		render    func(errorpage.Props) string
		wantPage  bool
		wantRole  string
		wantID    string
		mutate    func(*errorpage.Props)
		wantTitle string
	}{
		{name: "page", render: func(p errorpage.Props) string { return htmlcheck.MustRender(t, errorpage.Page(p)) }, wantPage: true, wantTitle: "Cookies are blocked – smartlabs"},
		{
			name:      "page with layout",
			render:    func(p errorpage.Props) string { return htmlcheck.MustRender(t, errorpage.Page(p)) },
			mutate:    func(p *errorpage.Props) { p.Layout = layout.Props{Title: "Error", ThemePath: "/theme.css"} },
			wantPage:  true,
			wantTitle: "Error",
		},
		{name: "fragment", render: func(p errorpage.Props) string { return htmlcheck.MustRender(t, errorpage.Fragment(p)) }, wantRole: "alert"},
		{
			name:     "fragment keeping the swap target",
			render:   func(p errorpage.Props) string { return htmlcheck.MustRender(t, errorpage.Fragment(p)) },
			mutate:   func(p *errorpage.Props) { p.ID = "labs" },
			wantRole: "alert",
			wantID:   "labs",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := props
			if tt.mutate != nil {
				tt.mutate(&p)
			}
			doc := htmlcheck.MustParse(t, tt.render(p))
			for id, want := range map[string]string{
				"error-title":   p.Title,
				"error-message": p.Message,
				"error-ref":     "ref req-42",
				"error-status":  "Error 403",
			} {
				if got := text(doc.Find(`[data-testid="` + id + `"]`)); got != want {
					t.Errorf("%s = %q, want %q", id, got, want)
				}
			}
			var links []link
			doc.Find(`[data-testid="error-action"]`).Each(func(_ int, s *goquery.Selection) {
				links = append(links, link{text(s), s.AttrOr("href", ""), s.AttrOr("target", ""), s.AttrOr("rel", "")})
			})
			if diff := cmp.Diff(wantLinks, links); diff != "" {
				t.Errorf("actions (-want +got):\n%s", diff)
			}
			root := doc.Find(`[data-testid="error"]`)
			if got := root.AttrOr("role", ""); got != tt.wantRole {
				t.Errorf("role = %q, want %q", got, tt.wantRole)
			}
			if got := root.AttrOr("id", ""); got != tt.wantID {
				t.Errorf("id = %q, want %q", got, tt.wantID)
			}
			isPage := doc.Find("main").Length() == 1
			if isPage != tt.wantPage {
				t.Errorf("full page = %v, want %v", isPage, tt.wantPage)
			}
			if tt.wantPage {
				if got := doc.Find("title").Text(); got != tt.wantTitle {
					t.Errorf("title = %q, want %q", got, tt.wantTitle)
				}
				if doc.Find(`main [data-testid="error"]`).Length() != 1 {
					t.Error("error box is not inside <main>")
				}
			}
			htmlcheck.AssertCSPSafe(t, doc)
		})
	}
}

func TestErrorEscapingAndOptionalParts(t *testing.T) {
	const evil = `<script>alert(1)</script>`
	html := htmlcheck.MustRender(t, errorpage.Page(errorpage.Props{Title: evil, Message: evil, Actions: []errorpage.Action{{Label: evil, Href: "/x"}}}))
	doc := htmlcheck.MustParse(t, html)
	if n := doc.Find("script").Length(); n != 1 {
		t.Errorf("page has %d <script> elements, want only the bundle", n)
	}
	if !strings.Contains(html, "&lt;script&gt;") {
		t.Error("escaped title not found in the raw HTML")
	}
	for _, id := range []string{"error-ref", "error-status"} {
		if doc.Find(`[data-testid="`+id+`"]`).Length() != 0 {
			t.Errorf("%s shown although empty", id)
		}
	}
	htmlcheck.AssertCSPSafe(t, doc)
}
