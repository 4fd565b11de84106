package ehrsim

import (
	"fmt"
	"html"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Paging limits, as Epic applies them.
const (
	defaultPageSize  = 100
	maxPageSize      = 1000
	searchLifetime   = 15 * time.Minute
	fhirContentType  = "application/fhir+json; charset=utf-8"
	oauthURIsExtURL  = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
	securityServices = "http://terminology.hl7.org/CodeSystem/restful-security-service"
)

// search is one Observation search whose pages are reached through opaque cursors.
type search struct {
	patient  string
	category bool // false when the category is not laboratory: no matches.
	pageSize int
	created  time.Time
	expired  bool
	// criteria are the date parameters applied; sel is what they select, set once.
	criteria criteria
	once     sync.Once
	sel      selection
}

// cursor is what an opaque next link stands for.
type cursor struct {
	search string
	page   int
}

// outcome builds an OperationOutcome; epicCode, when set, goes into
// issue.details.coding as Epic reports its own error codes.
func outcome(severity, code, epicCode, text string) map[string]any {
	issue := map[string]any{"severity": severity, "code": code, "diagnostics": text}
	details := codeableConcept{Text: text}
	if epicCode != "" {
		details.Coding = []coding{{System: systemEpicOutcome, Code: epicCode, Display: text}}
	}
	issue["details"] = details
	return map[string]any{"resourceType": "OperationOutcome", "issue": []any{issue}}
}

func writeOutcome(w http.ResponseWriter, status int, severity, code, epicCode, text string) {
	writeJSON(w, status, fhirContentType, outcome(severity, code, epicCode, text))
}

// authorizeFHIR checks the bearer token; on failure it answers 401 and returns nil.
func (s *Sim) authorizeFHIR(w http.ResponseWriter, r *http.Request) *accessGrant {
	g, present := s.bearer(r)
	if g == nil {
		if present {
			w.Header().Set("WWW-Authenticate", `Bearer realm="ehrsim", error="invalid_token"`)
		} else {
			w.Header().Set("WWW-Authenticate", `Bearer realm="ehrsim"`)
		}
		writeOutcome(w, http.StatusUnauthorized, "error", "login", "", "A valid access token is required.")
		return nil
	}
	markAuthorized(w)
	return g
}

// allows reports whether the granted scopes permit reading resource type res.
func allows(scopes []string, res string) bool {
	for _, sc := range scopes {
		rest, ok := strings.CutPrefix(sc, "patient/")
		if !ok {
			rest, ok = strings.CutPrefix(sc, "user/")
		}
		if !ok {
			continue
		}
		typ, perm, _ := strings.Cut(rest, ".")
		perm, _, _ = strings.Cut(perm, "?")
		if typ != res && typ != "*" {
			continue
		}
		if perm == "read" || perm == "*" || strings.ContainsAny(perm, "rs") && strings.Trim(perm, "cruds") == "" {
			return true
		}
	}
	return false
}

// handlePatient handles "GET /fhir/R4/Patient/{id}".
func (s *Sim) handlePatient(w http.ResponseWriter, r *http.Request) {
	allowCORS(w)
	if s.throttled(w) {
		return
	}
	s.latency(r.Context())
	g := s.authorizeFHIR(w, r)
	if g == nil {
		return
	}
	id := r.PathValue("id")
	// A token is bound to one patient; any other id is refused whether it exists or not.
	if id != g.patient {
		writeOutcome(w, http.StatusForbidden, "error", "forbidden", "", "The access token does not grant access to this patient.")
		return
	}
	if !allows(g.scopes, "Patient") {
		writeOutcome(w, http.StatusForbidden, "error", "forbidden", "", "The granted scopes do not include Patient read.")
		return
	}
	writeJSON(w, http.StatusOK, fhirContentType, s.data.patient(id).resource())
}

// searchBasics reads what every first search request must carry, as Epic
// demands it: the token's own patient, a category, and a positive _count
// (capped at maxPageSize; size when absent). It answers the error itself
// and reports false when the request is refused.
func searchBasics(w http.ResponseWriter, q url.Values, g *accessGrant, size int) (patient, category string, _ int, ok bool) {
	patient, _ = strings.CutPrefix(q.Get("patient"), "Patient/")
	category = q.Get("category")
	if patient == "" || category == "" {
		// Epic refuses an Observation or DiagnosticReport search without patient and category.
		writeOutcome(w, http.StatusBadRequest, "error", "required", "4100", "A required search parameter (patient and category) is missing.")
		return "", "", 0, false
	}
	if patient != g.patient {
		writeOutcome(w, http.StatusForbidden, "error", "forbidden", "", "The access token does not grant access to this patient.")
		return "", "", 0, false
	}
	if c := q.Get("_count"); c != "" {
		n, err := strconv.Atoi(c)
		if err != nil || n <= 0 {
			writeOutcome(w, http.StatusBadRequest, "error", "invalid", "", "_count must be a positive integer.")
			return "", "", 0, false
		}
		size = n
	}
	return patient, category, min(size, maxPageSize), true
}

// handleObservationSearch handles "GET /fhir/R4/Observation", both the first
// search and the opaque next links.
func (s *Sim) handleObservationSearch(w http.ResponseWriter, r *http.Request) {
	allowCORS(w)
	if s.throttled(w) {
		return
	}
	s.latency(r.Context())
	g := s.authorizeFHIR(w, r)
	if g == nil {
		return
	}
	if !allows(g.scopes, "Observation") {
		writeOutcome(w, http.StatusForbidden, "error", "forbidden", "", "The granted scopes do not include Observation read.")
		return
	}
	q := r.URL.Query()
	if sid := q.Get("sessionID"); sid != "" {
		s.serveNextPage(w, r, g, sid)
		return
	}
	sw := s.Switches()
	size := sw.PageSize
	if size <= 0 {
		size = defaultPageSize
	}
	patient, category, size, ok := searchBasics(w, q, g, size)
	if !ok {
		return
	}
	crit, err := parseCriteria(q, sw.SearchParams)
	if err != nil {
		writeOutcome(w, http.StatusBadRequest, "error", "invalid", "", "A search parameter is invalid: "+err.Error())
		return
	}
	lab := false
	for c := range strings.SplitSeq(category, ",") {
		if c == "laboratory" || c == systemCategory+"|laboratory" {
			lab = true
		}
	}
	sid := randomString(24)
	s.mu.Lock()
	now := s.now()
	for k, v := range s.searches {
		if now.Sub(v.created) > searchLifetime {
			delete(s.searches, k)
		}
	}
	for k, v := range s.cursors {
		if s.searches[v.search] == nil {
			delete(s.cursors, k)
		}
	}
	sr := &search{patient: patient, category: lab, pageSize: size, created: now, criteria: crit}
	s.searches[sid] = sr
	s.mu.Unlock()
	s.renderPage(w, r, sid, sr, 1, s.ISS()+"/Observation?"+q.Encode())
}

// serveNextPage answers an opaque next link.
func (s *Sim) serveNextPage(w http.ResponseWriter, r *http.Request, g *accessGrant, cursorID string) {
	sw := s.Switches()
	s.mu.Lock()
	c, ok := s.cursors[cursorID]
	sr := s.searches[c.search]
	switch {
	case !ok || sr == nil || sr.expired || s.now().Sub(sr.created) > searchLifetime:
		s.mu.Unlock()
		writeOutcome(w, http.StatusBadRequest, "error", "processing", "4113", "The paging session has expired.")
		return
	case sr.patient != g.patient:
		s.mu.Unlock()
		writeOutcome(w, http.StatusForbidden, "error", "forbidden", "", "The access token does not grant access to this patient.")
		return
	case sw.PagingExpired && !s.expiredBy[g.id]:
		// Once per access token, so the app's restarted search can finish.
		s.expiredBy[g.id] = true
		sr.expired = true
		s.mu.Unlock()
		writeOutcome(w, http.StatusBadRequest, "error", "processing", "4113", "The paging session has expired.")
		return
	}
	s.mu.Unlock()
	s.renderPage(w, r, c.search, sr, c.page, s.ISS()+"/Observation?sessionID="+cursorID)
}

// bundleEntry is one entry of a searchset Bundle.
type bundleEntry struct {
	FullURL  string         `json:"fullUrl,omitempty"`
	Resource any            `json:"resource"`
	Search   map[string]any `json:"search"`
}

// renderPage writes page number page (1-based) of a search.
func (s *Sim) renderPage(w http.ResponseWriter, r *http.Request, searchID string, sr *search, page int, selfURL string) {
	sw := s.Switches()
	if sw.FailPage > 0 && page == sw.FailPage {
		writeOutcome(w, http.StatusInternalServerError, "fatal", "exception", "", "An unexpected internal error has occurred.")
		return
	}
	var all []observation
	if sr.category {
		// Every page of one search shows the data as of the search's start.
		all = s.data.observations(sr.patient, sr.created)
	}
	sel := s.selectFor(sr, all)
	total := sel.len()
	iss := s.ISS()
	startAt := min((page-1)*sr.pageSize, total)
	end := min(startAt+sr.pageSize, total)
	entries := make([]bundleEntry, 0, end-startAt+1)
	for i := startAt; i < end; i++ {
		o, ts := sel.at(i)
		if page == 1 && i == 1 && sw.WrongSubject {
			o.Subject = s.otherPatient(sr.patient)
		}
		if o.Meta == nil {
			o.Meta = &meta{LastUpdated: ts.updatedText}
		}
		entries = append(entries, bundleEntry{
			FullURL: iss + "/Observation/" + o.ID, Resource: o, Search: map[string]any{"mode": "match"},
		})
	}
	if page == 1 {
		switch {
		case total == 0:
			entries = append(entries, noResultsEntry())
		case s.data.patient(sr.patient).outcome == "4119":
			entries = append(entries, bundleEntry{
				Resource: outcome("warning", "processing", "4119", "Some data may not be available"),
				Search:   map[string]any{"mode": "outcome"},
			})
		}
	}
	s.resultsLatency(r, end-startAt)
	links := []map[string]string{{"relation": "self", "url": selfURL}}
	if end < total {
		// The next link is an opaque cursor so the client cannot compute pages itself.
		next := randomString(24)
		s.mu.Lock()
		s.cursors[next] = cursor{search: searchID, page: page + 1}
		s.mu.Unlock()
		links = append(links, map[string]string{"relation": "next", "url": iss + "/Observation?sessionID=" + next})
	}
	writeSearchset(w, total, links, entries)
}

// noResultsEntry is Epic's informational outcome of a search that matched nothing.
func noResultsEntry() bundleEntry {
	return bundleEntry{
		Resource: outcome("warning", "processing", "4101", "No results found"),
		Search:   map[string]any{"mode": "outcome"},
	}
}

// writeSearchset writes a searchset Bundle of total matches.
func writeSearchset(w http.ResponseWriter, total int, links []map[string]string, entries []bundleEntry) {
	writeJSON(w, http.StatusOK, fhirContentType, map[string]any{
		"resourceType": "Bundle",
		"type":         "searchset",
		"total":        total,
		"link":         links,
		"entry":        entries,
	})
}

// otherPatient returns a subject reference to a patient other than id.
func (s *Sim) otherPatient(id string) reference {
	for _, p := range s.data.patients {
		if p.id != id {
			return reference{Reference: "Patient/" + p.id, Display: p.given + " " + p.family}
		}
	}
	return reference{Reference: "Patient/unknown"}
}

// handleFHIRNotFound handles any other "/fhir/R4/" request.
func (s *Sim) handleFHIRNotFound(w http.ResponseWriter, r *http.Request) {
	allowCORS(w)
	writeOutcome(w, http.StatusNotFound, "error", "not-supported", "", "This resource or interaction is not supported.")
}

// wantsJSON reports whether a metadata request asked for JSON; Epic answers XML otherwise.
func wantsJSON(r *http.Request) bool {
	if f := r.URL.Query().Get("_format"); f != "" {
		return strings.Contains(f, "json")
	}
	return strings.Contains(r.Header.Get("Accept"), "json")
}

// handleMetadata handles "GET /fhir/R4/metadata".
func (s *Sim) handleMetadata(w http.ResponseWriter, r *http.Request) {
	allowCORS(w)
	s.latency(r.Context())
	if s.Switches().DiscoveryDown {
		http.Error(w, "service unavailable", http.StatusServiceUnavailable)
		return
	}
	authz, token := s.AuthorizeURL(), s.TokenURL()
	params, contained := s.observationSearchParams()
	if wantsJSON(r) {
		cs := map[string]any{
			"resourceType": "CapabilityStatement",
			"status":       "active",
			"date":         "2026-11-02",
			"kind":         "instance",
			"fhirVersion":  "4.0.1",
			"format":       []string{"xml", "json"},
			"implementation": map[string]any{
				"description": "EHR simulator", "url": s.ISS(),
			},
			"rest": []any{map[string]any{
				"mode": "server",
				"security": map[string]any{
					"extension": []any{map[string]any{
						"url": oauthURIsExtURL,
						"extension": []any{
							map[string]any{"url": "authorize", "valueUri": authz},
							map[string]any{"url": "token", "valueUri": token},
						},
					}},
					"service": []codeableConcept{{
						Coding: []coding{{System: securityServices, Code: "SMART-on-FHIR"}},
						Text:   "OAuth2 using SMART-on-FHIR profile (see http://docs.smarthealthit.org)",
					}},
				},
				"resource": []any{
					map[string]any{"type": "Patient", "interaction": []any{map[string]string{"code": "read"}}},
					map[string]any{
						"type":        "Observation",
						"interaction": []any{map[string]string{"code": "search-type"}},
						"searchParam": params,
					},
					map[string]any{
						"type":        "DiagnosticReport",
						"interaction": []any{map[string]string{"code": "search-type"}},
						"searchParam": []any{
							map[string]string{"name": "patient", "type": "reference"},
							map[string]string{"name": "category", "type": "token"},
							map[string]string{"name": "_count", "type": "number"},
						},
					},
				},
			}},
		}
		if len(contained) > 0 {
			cs["contained"] = contained
		}
		writeJSON(w, http.StatusOK, fhirContentType, cs)
		return
	}
	w.Header().Set("Content-Type", "application/fhir+xml; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>
<CapabilityStatement xmlns="http://hl7.org/fhir">
  <status value="active"/>
  <date value="2026-11-02"/>
  <kind value="instance"/>
  <fhirVersion value="4.0.1"/>
  <format value="xml"/>
  <format value="json"/>
  <rest>
    <mode value="server"/>
    <security>
      <extension url="%s">
        <extension url="authorize"><valueUri value="%s"/></extension>
        <extension url="token"><valueUri value="%s"/></extension>
      </extension>
      <service><coding><system value="%s"/><code value="SMART-on-FHIR"/></coding></service>
    </security>
    <resource><type value="Patient"/><interaction><code value="read"/></interaction></resource>
    <resource><type value="Observation"/><interaction><code value="search-type"/></interaction></resource>
    <resource><type value="DiagnosticReport"/><interaction><code value="search-type"/></interaction></resource>
  </rest>
</CapabilityStatement>
`, oauthURIsExtURL, html.EscapeString(authz), html.EscapeString(token), securityServices)
}
