// Package metrics holds smartlabs' Prometheus metrics: launches, token
// requests, FHIR request latency, result counts and session store errors.
//
// No label ever carries patient data, user ids, launch ids or tokens: the
// issuer label is the configured issuer name, every other label is a fixed
// word from this package. A *Metrics may be nil; then every method is a no-op,
// so code and tests that do not serve metrics need no special case.
package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"smartlabs/server/config"
)

// Outcomes of launches and token requests.
const (
	// OK is a success.
	OK = "ok"
	// Refused is a request the other side or the app turned down (4xx).
	Refused = "refused"
	// Error is a failure: 5xx, unreachable server or unexpected error.
	Error = "error"
)

// Launch stages.
const (
	// StageLaunch is GET /launch: the start of a launch.
	StageLaunch = "launch"
	// StageCallback is the OAuth redirect back: the end of a launch.
	StageCallback = "callback"
)

// Grant types counted for token requests.
const (
	GrantAuthorizationCode = "authorization_code"
	GrantRefreshToken      = "refresh_token"
	GrantClientCredentials = "client_credentials"
)

// Where a recovered panic happened: the where label of smartlabs_panics_total.
const (
	// PanicRequest is a request handler (the recover middleware).
	PanicRequest = "request"
	// PanicFetch is the background fetch of a launch's lab results.
	PanicFetch = "fetch"
	// PanicTheme is the background fetch of an EHR style document.
	PanicTheme = "theme"
)

// Outcomes of a lab report (DiagnosticReport) search, besides OK and Error.
const (
	// ReportsNotGranted: the token's scope lacks DiagnosticReport; no search ran.
	ReportsNotGranted = "not_granted"
	// ReportsForbidden: the EHR refused the search (401, 403).
	ReportsForbidden = "forbidden"
	// ReportsRefused: the EHR did not accept the request (400, 404).
	ReportsRefused = "refused"
	// ReportsErrorOutcome: the EHR answered with an error OperationOutcome.
	ReportsErrorOutcome = "error_outcome"
	// ReportsWrongPatient: a report named another patient.
	ReportsWrongPatient = "wrong_patient"
	// ReportsMalformed: the answer could not be read, or its paging broke.
	ReportsMalformed = "malformed"
	// ReportsTimeout: the EHR did not answer in time.
	ReportsTimeout = "timeout"
)

// OtherIssuer labels requests to a server that is no configured issuer.
const OtherIssuer = "other"

// Options configure New.
type Options struct {
	// Issuers are the configured issuers; their names are the issuer label values.
	Issuers []config.Issuer
	// Version, GoVersion and Revision fill smartlabs_build_info.
	Version, GoVersion, Revision string
}

// Metrics is smartlabs' set of Prometheus metrics on its own registry.
type Metrics struct {
	reg         *prometheus.Registry
	launches    *prometheus.CounterVec
	tokens      *prometheus.CounterVec
	fhir        *prometheus.HistogramVec
	results     *prometheus.HistogramVec
	storeErrors prometheus.Counter
	panics      *prometheus.CounterVec
	reports     *prometheus.CounterVec
	issuers     []issuerMatch
	names       map[string]bool
}

// New creates the metrics and registers them, with the Go and process
// collectors, on a registry of their own.
func New(opts Options) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		launches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "smartlabs_launches_total",
			Help: "Launch requests by issuer, stage (launch: GET /launch; callback: the OAuth redirect back) and outcome (ok, refused, error).",
		}, []string{"issuer", "stage", "outcome"}),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "smartlabs_token_requests_total",
			Help: "Token endpoint requests by issuer, grant (authorization_code = code exchange, refresh_token = refresh) and outcome (ok, refused, error).",
		}, []string{"issuer", "grant", "outcome"}),
		fhir: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "smartlabs_fhir_request_duration_seconds",
			Help:    "FHIR request latency, until the response body is read, by issuer and status class (2xx, 4xx, 5xx, error).",
			Buckets: []float64{.025, .05, .1, .25, .5, 1, 2.5, 5, 10, 20},
		}, []string{"issuer", "status"}),
		results: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "smartlabs_lab_results",
			Help:    "Lab results gathered per labs view, by issuer.",
			Buckets: []float64{0, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000},
		}, []string{"issuer"}),
		storeErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "smartlabs_session_store_errors_total",
			Help: "Session store failures (memory or Redis) seen while serving requests.",
		}),
		panics: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "smartlabs_panics_total",
			Help: "Panics recovered, by where they happened (request, fetch, theme); each is logged with its request id.",
		}, []string{"where"}),
		reports: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "smartlabs_report_searches_total",
			Help: "Lab report (DiagnosticReport) searches by issuer and outcome (ok, not_granted, forbidden, refused, error_outcome, wrong_patient, malformed, timeout, error); the views do without reports when one fails.",
		}, []string{"issuer", "outcome"}),
		names: map[string]bool{},
	}
	build := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "smartlabs_build_info",
		Help: "Always 1; the labels name the running build.",
	}, []string{"version", "goversion", "revision"})
	build.WithLabelValues(orUnknown(opts.Version), orUnknown(opts.GoVersion), orUnknown(opts.Revision)).Set(1)
	m.reg.MustRegister(m.launches, m.tokens, m.fhir, m.results, m.storeErrors, m.panics, m.reports, build,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, is := range opts.Issuers {
		m.names[is.Name] = true
		m.issuers = append(m.issuers, newIssuerMatch(is))
	}
	return m
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	if m == nil {
		return http.NotFoundHandler()
	}
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// Registry returns the registry the metrics live on (tests read it).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// issuerLabel keeps the label to the configured names, so no value from a
// request can create a new series or carry data into the metrics.
func (m *Metrics) issuerLabel(name string) string {
	if m.names[name] {
		return name
	}
	return OtherIssuer
}

func oneOf(v string, allowed ...string) string {
	for _, a := range allowed {
		if v == a {
			return v
		}
	}
	return "other"
}

// Launch counts one launch request of issuer at stage with outcome.
func (m *Metrics) Launch(issuer, stage, outcome string) {
	if m == nil {
		return
	}
	m.launches.WithLabelValues(m.issuerLabel(issuer), oneOf(stage, StageLaunch, StageCallback), oneOf(outcome, OK, Refused, Error)).Inc()
}

// TokenRequest counts one token endpoint request of issuer for grant with outcome.
func (m *Metrics) TokenRequest(issuer, grant, outcome string) {
	if m == nil {
		return
	}
	m.tokens.WithLabelValues(m.issuerLabel(issuer),
		oneOf(grant, GrantAuthorizationCode, GrantRefreshToken, GrantClientCredentials),
		oneOf(outcome, OK, Refused, Error)).Inc()
}

// TokenExchange counts one authorization code exchange.
func (m *Metrics) TokenExchange(issuer, outcome string) {
	m.TokenRequest(issuer, GrantAuthorizationCode, outcome)
}

// Refresh counts one refresh token request.
func (m *Metrics) Refresh(issuer, outcome string) {
	m.TokenRequest(issuer, GrantRefreshToken, outcome)
}

// ObserveFHIR records one FHIR request of issuer: its HTTP status (0 for a
// transport error) and how long it took.
func (m *Metrics) ObserveFHIR(issuer string, status int, d time.Duration) {
	if m == nil {
		return
	}
	m.fhir.WithLabelValues(m.issuerLabel(issuer), StatusClass(status)).Observe(d.Seconds())
}

// Results records how many lab results one labs view of issuer gathered.
func (m *Metrics) Results(issuer string, n int) {
	if m == nil {
		return
	}
	m.results.WithLabelValues(m.issuerLabel(issuer)).Observe(float64(n))
}

// ReportSearch counts one lab report search of issuer with outcome (OK,
// Error, or one of the Reports* outcomes).
func (m *Metrics) ReportSearch(issuer, outcome string) {
	if m == nil {
		return
	}
	m.reports.WithLabelValues(m.issuerLabel(issuer), oneOf(outcome, OK, Error, ReportsNotGranted, ReportsForbidden,
		ReportsRefused, ReportsErrorOutcome, ReportsWrongPatient, ReportsMalformed, ReportsTimeout)).Inc()
}

// SessionStoreError counts one session store failure.
func (m *Metrics) SessionStoreError() {
	if m == nil {
		return
	}
	m.storeErrors.Inc()
}

// Panic counts one recovered panic at where (PanicRequest, PanicFetch, PanicTheme).
func (m *Metrics) Panic(where string) {
	if m == nil {
		return
	}
	m.panics.WithLabelValues(oneOf(where, PanicRequest, PanicFetch, PanicTheme)).Inc()
}

// StatusClass is "2xx", "3xx", "4xx" or "5xx" for an HTTP status, "error" for 0.
func StatusClass(status int) string {
	if status < 100 || status > 599 {
		return "error"
	}
	return strconv.Itoa(status/100) + "xx"
}

// OutcomeOf maps an HTTP status to an outcome: 5xx (or 0) error, 4xx refused, else ok.
func OutcomeOf(status int) string {
	switch {
	case status == 0 || status >= 500:
		return Error
	case status >= 400:
		return Refused
	}
	return OK
}
