package htmlcheck

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestCSPViolations(t *testing.T) {
	tests := []struct {
		name string
		html string
		want []string
	}{
		{name: "clean", html: `<html><head><script src="/a.js" defer></script></head><body><p class="x">hi</p></body></html>`},
		{name: "inline script", html: `<script>alert(1)</script>`, want: []string{"<script> without src", "<script> with inline content"}},
		{name: "style element", html: `<style>p{}</style>`, want: []string{"<style> element"}},
		{name: "style attribute", html: `<p style="color:red">x</p>`, want: []string{"style attribute on <p>"}},
		{name: "event handler", html: `<button onclick="x()">x</button>`, want: []string{"onclick attribute on <button>"}},
		{name: "hx-on", html: `<button hx-on:click="x()">x</button>`, want: []string{"hx-on:click attribute on <button>"}},
		{name: "javascript url", html: `<a href=" JavaScript:alert(1)">x</a>`, want: []string{"javascript: URL on <a>"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := CSPViolations(MustParse(t, tt.html))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("violations (-want +got):\n%s", diff)
			}
		})
	}
}
