package ehrsim

import (
	"net/http"
	"strings"
	"time"
)

// reportCursor is what an opaque next link of a DiagnosticReport search stands for.
type reportCursor struct {
	patient  string
	lab      bool // false when the category asked for is not LAB: no matches.
	pageSize int
	page     int
	created  time.Time
}

// handleReportSearch handles "GET /fhir/R4/DiagnosticReport", both the first
// search and its opaque next links. Like Epic it needs the DiagnosticReport
// scope, a patient and a category.
func (s *Sim) handleReportSearch(w http.ResponseWriter, r *http.Request) {
	allowCORS(w)
	s.latency(r.Context())
	g := s.authorizeFHIR(w, r)
	if g == nil {
		return
	}
	if !allows(g.scopes, "DiagnosticReport") {
		writeOutcome(w, http.StatusForbidden, "error", "forbidden", "59204", "The granted scopes do not include DiagnosticReport read.")
		return
	}
	switch st := s.Switches().FailReports; {
	case st == http.StatusOK:
		writeJSON(w, http.StatusOK, fhirContentType, map[string]any{
			"resourceType": "Bundle", "type": "searchset", "total": 0,
			"entry": []bundleEntry{{
				Resource: outcome("error", "processing", "59100", "The search could not be completed."),
				Search:   map[string]any{"mode": "outcome"},
			}},
		})
		return
	case st != 0:
		writeOutcome(w, st, "error", "processing", "", "The search could not be completed.")
		return
	}
	q := r.URL.Query()
	if id := q.Get("sessionID"); id != "" {
		s.mu.Lock()
		c, ok := s.reportPages[id]
		s.mu.Unlock()
		switch {
		case !ok || s.now().Sub(c.created) > searchLifetime:
			writeOutcome(w, http.StatusBadRequest, "error", "processing", "4113", "The paging session has expired.")
		case c.patient != g.patient:
			writeOutcome(w, http.StatusForbidden, "error", "forbidden", "", "The access token does not grant access to this patient.")
		default:
			s.renderReports(w, c, s.ISS()+"/DiagnosticReport?sessionID="+id)
		}
		return
	}
	patient, category, size, ok := searchBasics(w, q, g, defaultPageSize)
	if !ok {
		return
	}
	c := reportCursor{patient: patient, pageSize: size, page: 1, created: s.now()}
	for cat := range strings.SplitSeq(category, ",") {
		if cat == "LAB" || cat == systemV20074+"|LAB" {
			c.lab = true
		}
	}
	s.renderReports(w, c, s.ISS()+"/DiagnosticReport?"+q.Encode())
}

// renderReports writes page c.page of a DiagnosticReport search.
func (s *Sim) renderReports(w http.ResponseWriter, c reportCursor, selfURL string) {
	var all []diagnosticReport
	if c.lab {
		all = s.data.reports(c.patient, c.created)
	}
	iss := s.ISS()
	start := min((c.page-1)*c.pageSize, len(all))
	end := min(start+c.pageSize, len(all))
	entries := make([]bundleEntry, 0, end-start+1)
	for _, rep := range all[start:end] {
		entries = append(entries, bundleEntry{FullURL: iss + "/DiagnosticReport/" + rep.ID, Resource: rep, Search: map[string]any{"mode": "match"}})
	}
	if len(all) == 0 {
		entries = append(entries, noResultsEntry())
	}
	links := []map[string]string{{"relation": "self", "url": selfURL}}
	if end < len(all) {
		next := randomString(24)
		nc := c
		nc.page++
		s.mu.Lock()
		now := s.now()
		for k, v := range s.reportPages {
			if now.Sub(v.created) > searchLifetime {
				delete(s.reportPages, k)
			}
		}
		s.reportPages[next] = nc
		s.mu.Unlock()
		links = append(links, map[string]string{"relation": "next", "url": iss + "/DiagnosticReport?sessionID=" + next})
	}
	writeSearchset(w, len(all), links, entries)
}
