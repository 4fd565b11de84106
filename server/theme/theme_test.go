package theme_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"smartlabs/server/theme"
)

func TestCSS(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want []string // declarations, sorted; nil means an empty stylesheet
	}{
		{
			name: "Epic keys",
			doc: `{"dim_border_radius":"4px","dim_font_size":"14px","dim_spacing_size":"1.5rem",
				"font_family_body":"Segoe UI,Arial, sans-serif","font_family_heading":"'Segoe UI', \"Arial\"","unknown_key":"#fff"}`,
			want: []string{
				"--sl-font-body: Segoe UI, Arial, sans-serif;", `--sl-font-heading: 'Segoe UI', "Arial";`,
				"--sl-font-size: 14px;", "--sl-radius: 4px;", "--sl-space: 1.5rem;",
			},
		},
		{
			// Colours that keep their contrast are used as sent, as #rrggbb.
			name: "colours with enough contrast",
			doc:  `{"color_error":"#b3261e","color_highlight":"#2a4d69","color_modal_backdrop":"#1d273380","color_success":"rgb(21, 128, 61)","color_text":"#000"}`,
			want: []string{
				"--sl-accent: #2a4d69;", "--sl-backdrop: #1d273380;", "--sl-critical: #b3261e;", "--sl-error-border: #b3261e;",
				"--sl-fg: #000000;", "--sl-focus: #2a4d69;",
			},
		},
		{
			name: "injection attempts are dropped",
			doc: `{"color_background":"red;} body{display:none","color_text":"#fff; background:url(https://evil.example/x)",
				"color_highlight":"expression(alert(1))","dim_font_size":"14px}*{color:red","dim_border_radius":"calc(1px)",
				"font_family_body":"Arial;}@import url(evil.css);","font_family_heading":"\"Arial\\\"}\"",
				"color_error":"#12345","dim_spacing_size":"-4px","color_success":12}`,
		},
		{name: "not an object", doc: `["#fff"]`},
		{name: "not JSON", doc: `color_background: #fff`},
		{name: "kept beside a bad value", doc: `{"color_text":"#000","color_background":"</style>"}`, want: []string{"--sl-fg: #000000;"}},
		{name: "channels out of range are dropped", doc: `{"color_text":"rgb(300, 0, 0)","color_highlight":"rgb(10%, 20, 30)","color_error":"rgba(0, 0, 0, 1.5)"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			css := string(theme.CSS([]byte(tt.doc)))
			if tt.want == nil {
				if css != "" {
					t.Fatalf("CSS = %q, want empty", css)
				}
				return
			}
			var got []string
			for _, l := range strings.Split(css, "\n") {
				if l = strings.TrimSpace(l); strings.HasPrefix(l, "--") {
					got = append(got, l)
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("declarations (-want +got):\n%s", diff)
			}
			if !strings.Contains(css, ":root {") || strings.Count(css, "{") != 1 || strings.Count(css, "}") != 1 {
				t.Errorf("stylesheet is not one :root rule: %q", css)
			}
		})
	}
}

func TestAllowed(t *testing.T) {
	const iss = "https://fhir.example.org/api/FHIR/R4"
	tests := []struct {
		style string
		want  bool
	}{
		{"https://fhir.example.org/styles/smart.json", true},
		{"https://FHIR.example.org/x.json", true},
		{"http://fhir.example.org/styles/smart.json", false},
		{"https://fhir.example.org:8443/styles/smart.json", false},
		{"https://evil.example/styles/smart.json", false},
		{"https://fhir.example.org.evil.example/s.json", false},
		{"https://user@fhir.example.org/s.json", false},
		{"//fhir.example.org/s.json", false},
		{"/styles/smart.json", false},
		{"file:///etc/passwd", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := theme.Allowed(tt.style, iss); got != tt.want {
			t.Errorf("Allowed(%q) = %v, want %v", tt.style, got, tt.want)
		}
	}
	if !theme.Allowed("http://127.0.0.1:9090/styles/smart.json", "http://127.0.0.1:9090/fhir/R4") {
		t.Error("loopback simulator style refused")
	}
}
