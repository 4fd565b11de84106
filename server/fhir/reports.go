package fhir

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// DiagnosticReport is the part of a FHIR DiagnosticReport the app uses: a
// lab panel's report, which names the results it brings together.
type DiagnosticReport struct {
	ID, Status string
	// Code names the report, e.g. "BASIC METABOLIC PANEL".
	Code Concept
	// Subject is the subject reference, e.g. Patient/123.
	Subject string
	// Effective is effectiveDateTime or effectivePeriod.start; zero when absent.
	Effective         time.Time
	EffectiveDateOnly bool
	// Issued is when the report was released; zero when absent.
	Issued time.Time
	// Performers are who produced the report (the performing lab).
	Performers []Reference
	// Conclusion is the report's conclusion as sent.
	Conclusion string
	// Results are the references of the Observations the report brings together.
	Results []string
	// BasedOn are the orders the report fulfils.
	BasedOn []Reference
}

// ReportsResult is the outcome of one DiagnosticReport search.
type ReportsResult struct {
	// Reports are the reports gathered, entered-in-error ones left out.
	Reports []DiagnosticReport
	// Outcomes are the meanings of the OperationOutcomes the EHR sent.
	Outcomes []Outcome
	// Err is the fault that stopped the search, nil when every page
	// arrived; it is always a *Error. A search that fails is not used at all.
	Err error
	// Pages is how many pages arrived.
	Pages int
}

// ReportCategory is the category searched for: Epic's code for lab reports
// (HL7 v2 table 0074, diagnostic service section).
const ReportCategory = "LAB"

type wireReport struct {
	ResourceType      string        `json:"resourceType"`
	ID                string        `json:"id"`
	Status            string        `json:"status"`
	Code              wireConcept   `json:"code"`
	Subject           wireReference `json:"subject"`
	EffectiveDateTime string        `json:"effectiveDateTime"`
	EffectivePeriod   *struct {
		Start string `json:"start"`
	} `json:"effectivePeriod"`
	Issued     string          `json:"issued"`
	Performer  []wireReference `json:"performer"`
	Conclusion string          `json:"conclusion"`
	Result     []wireReference `json:"result"`
	BasedOn    []wireReference `json:"basedOn"`
}

// toReport converts a wire DiagnosticReport.
func toReport(w *wireReport) DiagnosticReport {
	r := DiagnosticReport{
		ID: w.ID, Status: w.Status, Code: toConcept(w.Code), Subject: w.Subject.Reference,
		Performers: toReferences(w.Performer), Conclusion: w.Conclusion,
		Results: toRefs(w.Result), BasedOn: toReferences(w.BasedOn),
	}
	switch {
	case w.EffectiveDateTime != "":
		r.Effective, r.EffectiveDateOnly = parseDateTime(w.EffectiveDateTime)
	case w.EffectivePeriod != nil:
		r.Effective, r.EffectiveDateOnly = parseDateTime(w.EffectivePeriod.Start)
	}
	r.Issued, _ = parseDateTime(w.Issued)
	return r
}

// reportPage is one decoded page of a DiagnosticReport search.
type reportPage struct {
	reports  []DiagnosticReport
	outcomes []Outcome
	next     string
}

// decodeReportPage decodes a searchset Bundle of DiagnosticReports, entry by
// entry (report searches are small), checking that every report is about
// the launch's patient.
func decodeReportPage(body []byte, patientID string) (*reportPage, error) {
	b, err := decodeRawBundle(body)
	if err != nil {
		return nil, err
	}
	p := &reportPage{next: nextLink(b.Link)}
	for i, e := range b.Entry {
		if len(e.Resource) == 0 {
			continue
		}
		var head resourceHead
		if err := unmarshal(e.Resource, &head); err != nil {
			return nil, newError(KindMalformed, http.StatusOK, fmt.Errorf("entry %d: unreadable resource", i))
		}
		switch head.ResourceType {
		case "DiagnosticReport":
			var w wireReport
			if err := unmarshalOK(e.Resource, &w); err != nil {
				return nil, err
			}
			// A report about another patient means the server is confused.
			if !isPatientRef(w.Subject.Reference, patientID) {
				return nil, newError(KindWrongPatient, http.StatusOK, fmt.Errorf("entry %d: subject is not the launch patient", i))
			}
			if w.Status != "entered-in-error" {
				p.reports = append(p.reports, toReport(&w))
			}
		case "OperationOutcome":
			var w wireOperationOutcome
			if err := unmarshalOK(e.Resource, &w); err != nil {
				return nil, err
			}
			p.outcomes = append(p.outcomes, toOutcomes(&w)...)
		}
	}
	return p, nil
}

// Reports searches the patient's lab DiagnosticReports (category LAB) and
// follows every next link, with the retries and bounds of the Observation
// search. It never returns an error value: a fault is reported in the
// result, and the caller then uses none of it.
func (c *Client) Reports(ctx context.Context, patientID string) *ReportsResult {
	if !fhirID.MatchString(patientID) {
		return &ReportsResult{Err: newError(KindRequest, 0, errors.New("invalid patient id"))}
	}
	base, err := c.base()
	if err != nil {
		return &ReportsResult{Err: err}
	}
	u := base.JoinPath("DiagnosticReport")
	u.RawQuery = url.Values{
		"patient":  {patientID},
		"category": {ReportCategory},
		"_count":   {strconv.Itoa(c.pageSize())},
	}.Encode()
	res := &ReportsResult{}
	seen := map[string]bool{}
	for {
		if res.Pages >= c.maxPages() || seen[u.String()] {
			res.Err = newError(KindMalformed, 0, errors.New("paging does not end"))
			return res
		}
		seen[u.String()] = true
		var p *reportPage
		err := c.retry(ctx, func(ctx context.Context) error {
			// Report pages count against the launch's and the issuer's bounds
			// like every other request to the EHR.
			done, err := c.admit(ctx)
			if err != nil {
				return err
			}
			body, oo, err := c.get(ctx, base, u)
			done(err)
			if err != nil {
				if oo != nil {
					res.Outcomes = append(res.Outcomes, toOutcomes(oo)...)
				}
				return err
			}
			p, err = decodeReportPage(body, patientID)
			return err
		})
		if err != nil {
			res.Err = err
			return res
		}
		res.Pages++
		res.Reports = append(res.Reports, p.reports...)
		res.Outcomes = append(res.Outcomes, p.outcomes...)
		if p.next == "" {
			res.Outcomes = dedupeOutcomes(res.Outcomes)
			return res
		}
		next, err := u.Parse(p.next)
		// The next link is opaque, but it must stay on the issuer's origin:
		// the bearer token is never sent anywhere else.
		if err != nil || !sameOrigin(base, next) {
			res.Err = newError(KindMalformed, 0, errors.New("next link points to another origin"))
			return res
		}
		u = next
	}
}

// Failed reports whether the search failed or the EHR answered it with an
// error outcome, so that none of it may be used.
func (r *ReportsResult) Failed() bool {
	if r == nil || r.Err != nil {
		return true
	}
	for _, o := range r.Outcomes {
		if o.Level == LevelError {
			return true
		}
	}
	return false
}
