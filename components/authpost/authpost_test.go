package authpost_test

import (
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"
	"github.com/google/go-cmp/cmp"

	"smartlabs/components/authpost"
	"smartlabs/components/internal/htmlcheck"
	"smartlabs/components/layout"
)

func TestPage(t *testing.T) {
	fields := []authpost.Field{
		{Name: "response_type", Value: "code"},
		{Name: "launch", Value: `tok"><script>alert(1)</script>`},
		{Name: "scope", Value: "launch openid fhirUser"},
	}
	tests := []struct {
		name       string
		action     string
		wantAction string
	}{
		{name: "https endpoint", action: "https://ehr.example/oauth2/authorize", wantAction: "https://ehr.example/oauth2/authorize"},
		{name: "javascript refused", action: "javascript:alert(1)", wantAction: "about:invalid#TemplFailedSanitizationURL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			html := htmlcheck.MustRender(t, authpost.Page(layout.Props{Title: "Signing in"}, authpost.Props{Action: tt.action, Fields: fields}))
			doc := htmlcheck.MustParse(t, html)
			form := doc.Find(`form[data-testid="authorize-form"]`)
			if form.Length() != 1 {
				t.Fatalf("got %d forms, want 1", form.Length())
			}
			if got := strings.ToLower(form.AttrOr("method", "")); got != "post" {
				t.Errorf("method = %q, want post", got)
			}
			if got := form.AttrOr("action", ""); got != tt.wantAction {
				t.Errorf("action = %q, want %q", got, tt.wantAction)
			}
			if _, ok := form.Attr("data-autosubmit"); !ok {
				t.Error("form lacks data-autosubmit")
			}
			var got []authpost.Field
			form.Find(`input[type="hidden"]`).Each(func(_ int, s *goquery.Selection) {
				got = append(got, authpost.Field{Name: s.AttrOr("name", ""), Value: s.AttrOr("value", "")})
			})
			if diff := cmp.Diff(fields, got); diff != "" {
				t.Errorf("fields (-want +got):\n%s", diff)
			}
			if form.Find(`button[type="submit"]`).Length() != 1 {
				t.Error("no submit button for browsers without script")
			}
			if n := doc.Find("script").Length(); n != 1 {
				t.Errorf("page has %d <script> elements, want only the bundle", n)
			}
			htmlcheck.AssertCSPSafe(t, doc)
		})
	}
}
