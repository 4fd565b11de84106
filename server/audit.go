package server

import (
	"time"

	"github.com/rs/zerolog"
)

// Audit records who viewed which patient's data. It is a separate log from
// the application log, which never holds patient identifiers.
type Audit struct {
	log zerolog.Logger
}

// NewAudit returns an Audit that writes one JSON object per line to l.
func NewAudit(l zerolog.Logger) *Audit { return &Audit{log: l} }

// AuditEvent is one access to patient data.
type AuditEvent struct {
	Who     string // fhirUser of the clinician
	Patient string // FHIR patient id
	Issuer  string // FHIR base URL
	What    string // e.g. "labs.view"
	Outcome string // complete | incomplete | denied | error
	Results int
	// ReportsOutcome is how the lab report (DiagnosticReport) search of the
	// same fetch ended: complete | denied | error; "" when it did not run.
	ReportsOutcome string
	Reports        int
	RequestID      string
	When           time.Time
}

// Record writes e.
func (a *Audit) Record(e AuditEvent) {
	a.log.Log().
		Time("when", e.When).
		Str("who", e.Who).
		Str("patient", e.Patient).
		Str("issuer", e.Issuer).
		Str("what", e.What).
		Str("outcome", e.Outcome).
		Int("results", e.Results).
		Func(func(ev *zerolog.Event) {
			if e.ReportsOutcome != "" {
				ev.Str("reports_outcome", e.ReportsOutcome).Int("reports", e.Reports)
			}
		}).
		Str("request_id", e.RequestID).
		Send()
}
