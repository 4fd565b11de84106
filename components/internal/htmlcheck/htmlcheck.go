// Package htmlcheck holds test helpers that render templ components and check the
// markup against the rules our Content-Security-Policy imposes.
package htmlcheck

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"
	"github.com/a-h/templ"
)

// MustRender renders c to a string.
func MustRender(t testing.TB, c templ.Component) string {
	t.Helper()
	var buf bytes.Buffer
	if err := c.Render(context.Background(), &buf); err != nil {
		t.Fatalf("render: %v", err)
	}
	return buf.String()
}

// MustParse parses html into a goquery document.
func MustParse(t testing.TB, html string) *goquery.Document {
	t.Helper()
	doc, err := goquery.NewDocumentFromReader(strings.NewReader(html))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return doc
}

// CSPViolations lists what in doc a CSP without 'unsafe-inline' would block or
// what our rules forbid: style attributes, <style> elements, scripts without src,
// inline event handlers and hx-on attributes.
func CSPViolations(doc *goquery.Document) []string {
	var out []string
	doc.Find("style").Each(func(_ int, _ *goquery.Selection) {
		out = append(out, "<style> element")
	})
	doc.Find("script").Each(func(_ int, s *goquery.Selection) {
		if src, ok := s.Attr("src"); !ok || src == "" {
			out = append(out, "<script> without src")
		}
		if strings.TrimSpace(s.Text()) != "" {
			out = append(out, "<script> with inline content")
		}
	})
	doc.Find("*").Each(func(_ int, s *goquery.Selection) {
		for _, a := range s.Nodes[0].Attr {
			name := strings.ToLower(a.Key)
			switch {
			case name == "style":
				out = append(out, "style attribute on <"+s.Nodes[0].Data+">")
			case strings.HasPrefix(name, "on"):
				out = append(out, name+" attribute on <"+s.Nodes[0].Data+">")
			case strings.HasPrefix(name, "hx-on"), strings.HasPrefix(name, "data-hx-on"):
				out = append(out, name+" attribute on <"+s.Nodes[0].Data+">")
			case name == "href" && strings.HasPrefix(strings.ToLower(strings.TrimSpace(a.Val)), "javascript:"):
				out = append(out, "javascript: URL on <"+s.Nodes[0].Data+">")
			}
		}
	})
	return out
}

// AssertCSPSafe fails t for every CSP violation in doc.
func AssertCSPSafe(t testing.TB, doc *goquery.Document) {
	t.Helper()
	for _, v := range CSPViolations(doc) {
		t.Errorf("CSP violation: %s", v)
	}
}
