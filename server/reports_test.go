package server_test

import (
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"

	"smartlabs/server"
	"smartlabs/server/config"
	"smartlabs/server/ehrsim"
	"smartlabs/server/metrics"
)

// noReportScopes is the default scope list without DiagnosticReport, as an
// issuer's `scopes` may set it.
const noReportScopes = "launch openid fhirUser online_access patient/Patient.read patient/Observation.read"

// generatedRe and launchRe match what differs between two launches of the
// same patient: the time the list was fetched and the launch id.
var (
	generatedRe = regexp.MustCompile(`as of [0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2} [A-Z]+`)
	launchRe    = regexp.MustCompile(`/l/[A-Za-z0-9_-]{22}`)
)

// reportLogLines are the application log lines about the lab report search.
func reportLogLines(logs string) []string {
	var out []string
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, "lab reports") {
			out = append(out, l)
		}
	}
	return out
}

// epicViews launches the patient with Epic's shapes, waits for every page,
// and returns its summary and all-results pages with the launch id and the
// generation time masked, and the log lines about lab reports it wrote.
func epicViews(t *testing.T, h *harness) (views map[string]string, logLines []string) {
	t.Helper()
	before := len(h.Logs.String())
	b := newBrowser(t)
	resp, _ := mustLaunch(t, h, b, h.Patient("Moreau"))
	views = map[string]string{}
	for _, v := range []string{"", "?view=all"} {
		r, _, body := b.get(resp.Request.URL.String() + v)
		if r.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d", v, r.StatusCode)
		}
		views[v] = launchRe.ReplaceAllString(generatedRe.ReplaceAllString(body, "as of TIME"), "/l/LAUNCH")
	}
	return views, reportLogLines(h.Logs.String()[before:])
}

// reportSearches reads smartlabs_report_searches_total for outcome.
func reportSearches(t *testing.T, m *metrics.Metrics, outcome string) float64 {
	t.Helper()
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	total := 0.0
	for _, mf := range mfs {
		if mf.GetName() != "smartlabs_report_searches_total" {
			continue
		}
		for _, c := range mf.GetMetric() {
			for _, l := range c.GetLabel() {
				if l.GetName() == "outcome" && l.GetValue() == outcome {
					total += c.GetCounter().GetValue()
				}
			}
		}
	}
	return total
}

// TestReportSearchFailsSilently: when the EHR does not grant the lab report
// scope, or the report search fails (403, 400, 500, an error outcome), the
// views are byte for byte those of an issuer that never asks for reports
// (the generation time and launch id aside), with exactly one log line and
// one count in the metric per launch. With the reports, the panels show them.
func TestReportSearchFailsSilently(t *testing.T) {
	without := newHarness(t, harnessOptions{Mutate: func(c *config.Config) { c.Issuers[0].Scopes = noReportScopes }})
	want, lines := epicViews(t, without)
	if len(lines) != 1 || !strings.Contains(lines[0], "not searched") {
		t.Errorf("without the scope: log lines %q, want one", lines)
	}
	if n := without.CountSimRequests("/fhir/R4/DiagnosticReport"); n != 0 {
		t.Errorf("%d report searches without the scope", n)
	}
	if !strings.Contains(want[""], "BASIC METABOLIC PANEL") {
		t.Error("without reports, the orders do not name the panels")
	}

	m := metrics.New(metrics.Options{})
	h := newHarness(t, harnessOptions{Deps: func(d *server.Deps) { d.Metrics = m }})
	tests := []struct {
		name    string
		sw      ehrsim.Switches
		outcome string
	}{
		{"not granted", ehrsim.Switches{NoReportScope: true}, metrics.ReportsNotGranted},
		{"403", ehrsim.Switches{FailReports: http.StatusForbidden}, metrics.ReportsForbidden},
		{"400", ehrsim.Switches{FailReports: http.StatusBadRequest}, metrics.ReportsRefused},
		{"500", ehrsim.Switches{FailReports: http.StatusInternalServerError}, metrics.Error},
		{"error outcome", ehrsim.Switches{FailReports: http.StatusOK}, metrics.ReportsErrorOutcome},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h.Sim.SetSwitches(tt.sw)
			before := reportSearches(t, m, tt.outcome)
			got, lines := epicViews(t, h)
			for v := range want {
				if got[v] != want[v] {
					t.Errorf("view %q differs from the view without reports:\n%s", v, firstDiff(want[v], got[v]))
				}
			}
			if len(lines) != 1 {
				t.Errorf("log lines %q, want one", lines)
			}
			if n := reportSearches(t, m, tt.outcome) - before; n != 1 {
				t.Errorf("metric outcome %q counted %v, want 1", tt.outcome, n)
			}
		})
	}

	// The control: with the reports the panels show their lab and conclusion.
	h.Sim.SetSwitches(ehrsim.Switches{})
	got, lines := epicViews(t, h)
	if got[""] == want[""] || !strings.Contains(got[""], "Riverside Core Laboratory") || !strings.Contains(got[""], "falsely raised by hemolysis") {
		t.Error("with the reports, the summary does not show them")
	}
	if len(lines) != 0 {
		t.Errorf("a working report search logged %q", lines)
	}
	// The report search is audited with the results, in the fetch's one event.
	audit := strings.Split(strings.TrimSpace(h.Audit.String()), "\n")
	if len(audit) != len(tests)+1 || !strings.Contains(audit[len(audit)-1], `"reports_outcome":"complete","reports":7`) ||
		!strings.Contains(audit[1], `"reports_outcome":"denied","reports":0`) || strings.Contains(audit[0], "reports") {
		t.Errorf("audit events of the report searches:\n%s", strings.Join(audit, "\n"))
	}
}

// firstDiff shows where two strings first differ.
func firstDiff(a, b string) string {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	lo := max(0, i-120)
	return "want …" + a[lo:min(len(a), i+120)] + "…\n got …" + b[lo:min(len(b), i+120)] + "…"
}

// TestDrillDownKeys: every test of the patient with Epic's shapes opens its
// drill-down, keyed by the organisation's component code (the one without
// LOINC included), and lists the codes it brings together; LOINC keys of
// older links still work; keys that are not one of the shapes are 404
// without touching the cache.
func TestDrillDownKeys(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	b := newBrowser(t)
	resp, _ := mustLaunch(t, h, b, h.Patient("Moreau"))
	labsURL := resp.Request.URL.String()
	_, doc, _ := b.get(labsURL)
	before := h.CountSimRequests("/fhir/R4/")
	keys := doc.Find(`[data-testid="summary-line"]`).Map(func(_ int, s *goquery.Selection) string { return s.AttrOr("data-key", "") })
	if len(keys) < 20 {
		t.Fatalf("%d summary lines", len(keys))
	}
	for _, k := range keys {
		if !strings.HasPrefix(k, "c501-2-") {
			t.Errorf("key %q is not the component code", k)
		}
		r, page, _ := b.get(labsURL + "/a/" + k)
		if r.StatusCode != http.StatusOK || page.Find(`[data-testid="analyte"]`).Length() != 1 {
			t.Errorf("%s: status %d", k, r.StatusCode)
		}
	}
	_, gap, _ := b.get(labsURL + "/a/c501-2-1547")
	if got := text(gap, "analyte-name"); got != "Anion Gap" || text(gap, "analyte-codes") != "Epic component 1547" {
		t.Errorf("anion gap drill-down: %q, codes %q", got, text(gap, "analyte-codes"))
	}
	_, k, _ := b.get(labsURL + "/a/c501-2-1520")
	if got := text(k, "analyte-codes"); got != "Epic component 1520, LOINC 2823-3" {
		t.Errorf("potassium codes %q", got)
	}
	for _, bad := range []string{"/a/c501-2-", "/a/c501-2-a.b", "/a/c501-2-" + strings.Repeat("a", 33), "/a/c..%2f..", "/a/k0123", "/a/c501-2-9999"} {
		if r, _, _ := b.get(labsURL + bad); r.StatusCode != http.StatusNotFound {
			t.Errorf("%s: status %d, want 404", bad, r.StatusCode)
		}
	}
	if after := h.CountSimRequests("/fhir/R4/"); after != before {
		t.Errorf("drill-downs made %d FHIR requests, want 0", after-before)
	}

	// An older link by LOINC code still opens the drill-down of a LOINC-keyed patient.
	resp, _ = mustLaunch(t, h, b, h.Patient("Lin"))
	if r, page, _ := b.get(resp.Request.URL.String() + "/a/2823-3"); r.StatusCode != http.StatusOK || text(page, "analyte-codes") != "LOINC 2823-3" {
		t.Errorf("LOINC drill-down: %d, codes %q", r.StatusCode, text(page, "analyte-codes"))
	}
}
