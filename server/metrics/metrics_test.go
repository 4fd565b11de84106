package metrics

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"smartlabs/server/config"
)

// fakeEHR answers FHIR reads under /a/fhir and /b/fhir and token requests at
// /oauth2/token with the status the path or the form asks for.
func fakeEHR(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/oauth2/token" {
			_ = r.ParseForm()
			if r.PostForm.Get("code") == "bad" {
				w.WriteHeader(http.StatusBadRequest)
				return
			}
			io.WriteString(w, `{"access_token":"x","token_type":"Bearer"}`)
			return
		}
		if strings.HasSuffix(r.URL.Path, "/fail") {
			w.WriteHeader(http.StatusInternalServerError)
		}
		io.WriteString(w, `{"resourceType":"Bundle"}`)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func mustMetrics(t *testing.T, base string) *Metrics {
	t.Helper()
	return New(Options{Issuers: []config.Issuer{
		{Name: "Org A", ISS: base + "/a/fhir", ClientID: "client-a"},
		{Name: "Org B", ISS: base + "/b/fhir", ClientID: "client-b"},
	}, Version: "v1"})
}

func do(t *testing.T, c *http.Client, req *http.Request) {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}

func TestTransport(t *testing.T) {
	srv := fakeEHR(t)
	m := mustMetrics(t, srv.URL)
	c := &http.Client{Transport: m.Transport(nil)}

	get := func(path string) *http.Request {
		r, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		return r
	}
	token := func(clientID string, form url.Values) *http.Request {
		r, _ := http.NewRequest(http.MethodPost, srv.URL+"/oauth2/token", strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.Header.Set("Epic-Client-ID", clientID)
		return r
	}
	do(t, c, get("/a/fhir/Observation?patient=p1"))
	do(t, c, get("/a/fhir/Patient/p1"))
	do(t, c, get("/b/fhir/Observation/fail"))
	do(t, c, get("/a/fhir/.well-known/smart-configuration")) // discovery: not a FHIR read
	do(t, c, get("/elsewhere"))
	do(t, c, token("client-a", url.Values{"grant_type": {"authorization_code"}, "code": {"good"}}))
	do(t, c, token("client-b", url.Values{"grant_type": {"authorization_code"}, "code": {"bad"}}))
	do(t, c, token("client-b", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"r"}}))
	do(t, c, token("", url.Values{"grant_type": {"client_credentials"}}))

	tests := []struct {
		name string
		got  float64
		want float64
	}{
		{"fhir A 2xx", histCount(t, m, "smartlabs_fhir_request_duration_seconds", `issuer="Org A",status="2xx"`), 2},
		{"fhir B 5xx", histCount(t, m, "smartlabs_fhir_request_duration_seconds", `issuer="Org B",status="5xx"`), 1},
		{"fhir other", histCount(t, m, "smartlabs_fhir_request_duration_seconds", `issuer="other"`), 0},
		{"exchange A ok", testutil.ToFloat64(m.tokens.WithLabelValues("Org A", "authorization_code", "ok")), 1},
		{"exchange B refused", testutil.ToFloat64(m.tokens.WithLabelValues("Org B", "authorization_code", "refused")), 1},
		{"refresh B ok", testutil.ToFloat64(m.tokens.WithLabelValues("Org B", "refresh_token", "ok")), 1},
		// Two issuers share the host and no client id came: not attributed to either.
		{"client credentials other", testutil.ToFloat64(m.tokens.WithLabelValues("other", "client_credentials", "ok")), 1},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %v, want %v", tt.name, tt.got, tt.want)
		}
	}
}

func TestTransportError(t *testing.T) {
	srv := fakeEHR(t)
	m := mustMetrics(t, srv.URL)
	srv.Close()
	c := &http.Client{Transport: m.Transport(nil), Timeout: 2 * time.Second}
	r, _ := http.NewRequest(http.MethodGet, srv.URL+"/a/fhir/Patient/p1", nil)
	if _, err := c.Do(r); err == nil {
		t.Fatal("request to a closed server succeeded")
	}
	if got := histCount(t, m, "smartlabs_fhir_request_duration_seconds", `issuer="Org A",status="error"`); got != 1 {
		t.Errorf("error count = %v, want 1", got)
	}
}

func TestLabelsStayFixed(t *testing.T) {
	m := mustMetrics(t, "https://ehr.example")
	m.Launch("Org A", StageLaunch, OK)
	m.Launch("patient 123", StageCallback, Refused)
	m.Launch("Org B", "<script>", "weird")
	m.Results("Org A", 250)
	m.SessionStoreError()
	m.Refresh("Org B", Error)
	m.Panic(PanicFetch)
	m.Panic("patient 123")

	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	body := rec.Body.String()
	for _, want := range []string{
		`smartlabs_launches_total{issuer="Org A",outcome="ok",stage="launch"} 1`,
		`smartlabs_launches_total{issuer="other",outcome="refused",stage="callback"} 1`,
		`smartlabs_launches_total{issuer="Org B",outcome="other",stage="other"} 1`,
		`smartlabs_lab_results_count{issuer="Org A"} 1`,
		`smartlabs_lab_results_sum{issuer="Org A"} 250`,
		`smartlabs_session_store_errors_total 1`,
		`smartlabs_panics_total{where="fetch"} 1`,
		`smartlabs_panics_total{where="other"} 1`,
		`smartlabs_token_requests_total{grant="refresh_token",issuer="Org B",outcome="error"} 1`,
		`smartlabs_build_info{goversion="unknown",revision="unknown",version="v1"} 1`,
		`go_goroutines`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	for _, bad := range []string{"patient 123", "<script>", "weird"} {
		if strings.Contains(body, bad) {
			t.Errorf("metrics carry %q", bad)
		}
	}
}

func TestNilIsNoop(t *testing.T) {
	var m *Metrics
	m.Launch("a", StageLaunch, OK)
	m.TokenExchange("a", OK)
	m.Refresh("a", OK)
	m.Results("a", 1)
	m.SessionStoreError()
	m.Panic(PanicRequest)
	m.ObserveFHIR("a", 200, time.Second)
	if m.Transport(http.DefaultTransport) != http.DefaultTransport {
		t.Error("nil Metrics wrapped the transport")
	}
}

func TestStatusClassAndOutcome(t *testing.T) {
	tests := []struct {
		status       int
		class, outco string
	}{
		{0, "error", Error}, {200, "2xx", OK}, {302, "3xx", OK}, {404, "4xx", Refused}, {503, "5xx", Error},
	}
	for _, tt := range tests {
		if got := StatusClass(tt.status); got != tt.class {
			t.Errorf("StatusClass(%d) = %q, want %q", tt.status, got, tt.class)
		}
		if got := OutcomeOf(tt.status); got != tt.outco {
			t.Errorf("OutcomeOf(%d) = %q, want %q", tt.status, got, tt.outco)
		}
	}
}

// histCount returns the sample count of the histogram series whose labels contain sel.
func histCount(t *testing.T, m *Metrics, name, sel string) float64 {
	t.Helper()
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	total := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, metric := range mf.GetMetric() {
			var parts []string
			for _, lp := range metric.GetLabel() {
				parts = append(parts, lp.GetName()+`="`+lp.GetValue()+`"`)
			}
			if strings.Contains(strings.Join(parts, ","), sel) {
				total += float64(metric.GetHistogram().GetSampleCount())
			}
		}
	}
	return total
}
