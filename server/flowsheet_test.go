package server_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
)

// TestFlowsheetFromCache: the flowsheet has its own URL, takes the period
// filter and a column offset, and is answered from the launch's cached
// results without any FHIR request, as a page and as a fragment whose
// pushed URL keeps the view and the offset.
func TestFlowsheetFromCache(t *testing.T) {
	now := time.Date(2026, 11, 3, 12, 0, 0, 0, time.UTC)
	h := newHarness(t, harnessOptions{Now: func() time.Time { return now }})
	b := newBrowser(t)
	resp, _ := mustLaunch(t, h, b, h.Patient("Moreau"))
	labsURL := resp.Request.URL.String()
	before := h.CountSimRequests("/fhir/R4/")

	columns := func(doc *goquery.Document) []string {
		return doc.Find(`[data-testid="flow-column"] time`).Map(func(_ int, s *goquery.Selection) string { return s.AttrOr("datetime", "") })
	}
	tests := []struct {
		query string
		cols  int
		rows  int
	}{
		{"?view=flowsheet", 4, 21},
		{"?view=flowsheet&range=30d", 2, 21},
		{"?view=flowsheet&range=7d", 1, 16},
		{"?view=flowsheet&col=3", 1, 10},
		{"?view=flowsheet&col=99", 4, 21},
		{"?view=flowsheet&col=-3", 4, 21},
		{"?view=flowsheet&q=potass", 4, 1},
	}
	for _, tt := range tests {
		r, doc, _ := b.get(labsURL + tt.query)
		if r.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d", tt.query, r.StatusCode)
		}
		cols := columns(doc)
		if len(cols) != tt.cols || doc.Find(`[data-testid="flow-row"]`).Length() != tt.rows {
			t.Errorf("%s: %d columns %v, %d rows; want %d, %d", tt.query, len(cols), cols, doc.Find(`[data-testid="flow-row"]`).Length(), tt.cols, tt.rows)
		}
		if doc.Find(`[data-testid="tab-flowsheet"][aria-current="page"]`).Length() != 1 {
			t.Errorf("%s: the flowsheet tab is not current", tt.query)
		}
	}
	_, doc, _ := b.get(labsURL + "?view=flowsheet")
	var groups []string
	doc.Find(`[data-testid="flow-group-name"]`).Each(func(_ int, s *goquery.Selection) { groups = append(groups, strings.TrimSpace(s.Text())) })
	if strings.Join(groups, "|") != "BASIC METABOLIC PANEL|CBC WITHOUT DIFFERENTIAL|HEMOGLOBIN A1C|HIV 1/2 AG/AB SCREEN|LIPID PANEL" {
		t.Errorf("panels %q", groups)
	}

	// A page of columns as htmx asks for it: the address bar gets its URL.
	fr, frag := getFragment(t, b, labsURL+"?view=flowsheet&col=2", "labs-results", "")
	if fr.StatusCode != http.StatusOK || len(columns(frag)) != 2 || !strings.HasSuffix(fr.Header.Get("HX-Push-Url"), "?col=2&view=flowsheet") {
		t.Errorf("fragment: status %d, %d columns, pushed %q", fr.StatusCode, len(columns(frag)), fr.Header.Get("HX-Push-Url"))
	}
	// A drill-down opened from the flowsheet returns to it.
	_, dd, _ := b.get(labsURL + "/a/c501-2-1520?view=flowsheet")
	if back := dd.Find(`[data-testid="back"]`).AttrOr("href", ""); !strings.HasSuffix(back, "?view=flowsheet") {
		t.Errorf("back link %q", back)
	}
	if after := h.CountSimRequests("/fhir/R4/"); after != before {
		t.Errorf("the flowsheet made %d FHIR requests, want 0", after-before)
	}
}
