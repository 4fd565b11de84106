package ehrsim

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// testBundle is the part of a searchset Bundle the tests read.
type testBundle struct {
	ResourceType string `json:"resourceType"`
	Type         string `json:"type"`
	Total        int    `json:"total"`
	Link         []struct {
		Relation string `json:"relation"`
		URL      string `json:"url"`
	} `json:"link"`
	Entry []struct {
		FullURL  string          `json:"fullUrl"`
		Resource json.RawMessage `json:"resource"`
		Search   struct {
			Mode string `json:"mode"`
		} `json:"search"`
	} `json:"entry"`
}

func (b *testBundle) next() string {
	for _, l := range b.Link {
		if l.Relation == "next" {
			return l.URL
		}
	}
	return ""
}

// testOutcome is the part of an OperationOutcome the tests read.
type testOutcome struct {
	ResourceType string `json:"resourceType"`
	Issue        []struct {
		Severity string `json:"severity"`
		Details  struct {
			Coding []struct {
				Code    string `json:"code"`
				Display string `json:"display"`
			} `json:"coding"`
		} `json:"details"`
	} `json:"issue"`
}

func (o *testOutcome) code() string {
	if len(o.Issue) == 0 || len(o.Issue[0].Details.Coding) == 0 {
		return ""
	}
	return o.Issue[0].Details.Coding[0].Code
}

func mustBundle(t *testing.T, resp *http.Response, body []byte) *testBundle {
	t.Helper()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status = %d, body = %.300s", resp.StatusCode, body)
	}
	var b testBundle
	if err := json.Unmarshal(body, &b); err != nil {
		t.Fatal(err)
	}
	return &b
}

func mustOutcome(t *testing.T, body []byte) *testOutcome {
	t.Helper()
	var o testOutcome
	if err := json.Unmarshal(body, &o); err != nil || o.ResourceType != "OperationOutcome" {
		t.Fatalf("not an OperationOutcome (%v): %.300s", err, body)
	}
	return &o
}

func searchPath(patient string, count int) string {
	v := url.Values{"patient": {patient}, "category": {"laboratory"}}
	if count > 0 {
		v.Set("_count", strconv.Itoa(count))
	}
	return "/fhir/R4/Observation?" + v.Encode()
}

func TestObservationPagingReachesResultCount(t *testing.T) {
	f := mustFixture(t, Switches{})
	for _, p := range f.sim.Patients() {
		t.Run(p.Family, func(t *testing.T) {
			tok := f.mustToken(t, p.ID)
			next := searchPath(p.ID, 0)
			if p.ResultCount > 1000 {
				next = searchPath(p.ID, 1000)
			}
			seen := map[string]bool{}
			var outcomes []string
			pages := 0
			for next != "" {
				pages++
				resp, body := f.get(t, next, tok)
				b := mustBundle(t, resp, body)
				if b.Type != "searchset" || b.Total != p.ResultCount || resp.Header.Get("Content-Type") != fhirContentType {
					t.Fatalf("page %d: type %q, total %d, content type %q", pages, b.Type, b.Total, resp.Header.Get("Content-Type"))
				}
				for _, e := range b.Entry {
					switch e.Search.Mode {
					case "match":
						var o observation
						if err := json.Unmarshal(e.Resource, &o); err != nil {
							t.Fatal(err)
						}
						if seen[o.ID] {
							t.Fatalf("observation %s served twice", o.ID)
						}
						seen[o.ID] = true
						if o.Subject.Reference != "Patient/"+p.ID || !strings.HasSuffix(e.FullURL, "/Observation/"+o.ID) {
							t.Errorf("observation %s: subject %q, fullUrl %q", o.ID, o.Subject.Reference, e.FullURL)
						}
					case "outcome":
						outcomes = append(outcomes, mustOutcome(t, e.Resource).code())
					default:
						t.Errorf("search mode %q", e.Search.Mode)
					}
				}
				next = b.next()
				if strings.Contains(next, "page=") || strings.Contains(next, "_count") {
					t.Errorf("next link %q lets the client compute pages", next)
				}
			}
			if len(seen) != p.ResultCount {
				t.Errorf("got %d observations, want %d", len(seen), p.ResultCount)
			}
			wantPages := max(1, (p.ResultCount+99)/100)
			if p.ResultCount > 1000 {
				wantPages = (p.ResultCount + 999) / 1000
			}
			if pages != wantPages {
				t.Errorf("got %d pages, want %d", pages, wantPages)
			}
			var wantOutcomes []string
			switch {
			case p.ResultCount == 0:
				wantOutcomes = []string{"4101"}
			case p.ID == patientSpecs[0].id:
				wantOutcomes = []string{"4119"}
			}
			if diff := cmp.Diff(wantOutcomes, outcomes); diff != "" {
				t.Errorf("outcome codes (-want +got):\n%s", diff)
			}
		})
	}
}

func TestObservationNewestFirst(t *testing.T) {
	f := mustFixture(t, Switches{})
	p := patientSpecs[0].id
	resp, body := f.get(t, searchPath(p, 50), f.mustToken(t, p))
	b := mustBundle(t, resp, body)
	var prev time.Time
	for i, e := range b.Entry {
		if e.Search.Mode != "match" {
			continue
		}
		var o observation
		if err := json.Unmarshal(e.Resource, &o); err != nil {
			t.Fatal(err)
		}
		at, err := time.Parse(time.RFC3339, o.EffectiveDateTime)
		if err != nil {
			t.Fatal(err)
		}
		if i > 0 && at.After(prev) {
			t.Errorf("entry %d (%s) is newer than the one before (%s)", i, at, prev)
		}
		prev = at
	}
}

func TestFHIRErrors(t *testing.T) {
	f := mustFixture(t, Switches{})
	p0, p1 := patientSpecs[0].id, patientSpecs[1].id
	tok := f.mustToken(t, p0)
	tests := []struct {
		name       string
		path       string
		token      string
		wantStatus int
		wantCode   string // Epic code in the OperationOutcome, if any.
	}{
		{"patient read", "/fhir/R4/Patient/" + p0, tok, 200, ""},
		{"no token", "/fhir/R4/Patient/" + p0, "", 401, ""},
		{"unknown token", "/fhir/R4/Patient/" + p0, "forged", 401, ""},
		{"search without token", searchPath(p0, 0), "", 401, ""},
		{"other patient read", "/fhir/R4/Patient/" + p1, tok, 403, ""},
		{"unknown patient read", "/fhir/R4/Patient/nobody", tok, 403, ""},
		{"search other patient", searchPath(p1, 0), tok, 403, ""},
		{"search without category", "/fhir/R4/Observation?patient=" + p0, tok, 400, "4100"},
		{"search without patient", "/fhir/R4/Observation?category=laboratory", tok, 400, "4100"},
		{"bad _count", searchPath(p0, 0) + "&_count=abc", tok, 400, ""},
		{"unknown cursor", "/fhir/R4/Observation?sessionID=forged", tok, 400, "4113"},
		{"unsupported resource", "/fhir/R4/Condition?patient=" + p0, tok, 404, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := f.get(t, tt.path, tt.token)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status = %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			if resp.Header.Get("Access-Control-Allow-Origin") != "*" {
				t.Error("no CORS header")
			}
			if tt.wantStatus == http.StatusUnauthorized && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("WWW-Authenticate = %q", resp.Header.Get("WWW-Authenticate"))
			}
			if tt.wantStatus == http.StatusOK {
				return
			}
			if got := mustOutcome(t, body).code(); got != tt.wantCode {
				t.Errorf("outcome code = %q, want %q", got, tt.wantCode)
			}
		})
	}
}

func TestPatientResource(t *testing.T) {
	f := mustFixture(t, Switches{})
	for _, p := range f.sim.Patients() {
		resp, body := f.get(t, "/fhir/R4/Patient/"+p.ID, f.mustToken(t, p.ID))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d", p.ID, resp.StatusCode)
		}
		var res struct {
			ID         string `json:"id"`
			Gender     string `json:"gender"`
			BirthDate  string `json:"birthDate"`
			Identifier []struct {
				Type   codeableConcept `json:"type"`
				System string          `json:"system"`
				Value  string          `json:"value"`
			} `json:"identifier"`
			Name []struct {
				Use    string   `json:"use"`
				Family string   `json:"family"`
				Given  []string `json:"given"`
			} `json:"name"`
		}
		if err := json.Unmarshal(body, &res); err != nil {
			t.Fatal(err)
		}
		mrn := ""
		for _, id := range res.Identifier {
			if len(id.Type.Coding) > 0 && id.Type.Coding[0].Code == "MR" && id.System != "" {
				mrn = id.Value
			}
		}
		got := PatientInfo{ID: res.ID, Gender: res.Gender, BirthDate: res.BirthDate, MRN: mrn, ResultCount: p.ResultCount, EnteredInError: p.EnteredInError}
		if len(res.Name) == 1 && res.Name[0].Use == "official" && len(res.Name[0].Given) == 1 {
			got.Family, got.Given = res.Name[0].Family, res.Name[0].Given[0]
			got.Name = got.Family + ", " + got.Given
		}
		if diff := cmp.Diff(p, got); diff != "" {
			t.Errorf("patient %s (-info +resource):\n%s", p.ID, diff)
		}
	}
}

func TestSwitchFailPage(t *testing.T) {
	f := mustFixture(t, Switches{FailPage: 2})
	p := patientSpecs[0].id
	tok := f.mustToken(t, p)
	resp, body := f.get(t, searchPath(p, 0), tok)
	b := mustBundle(t, resp, body)
	resp, body = f.get(t, b.next(), tok)
	if resp.StatusCode != http.StatusInternalServerError {
		t.Fatalf("page 2: status %d, want 500", resp.StatusCode)
	}
	mustOutcome(t, body)
	f.sim.SetSwitches(Switches{})
	resp, body = f.get(t, b.next(), tok)
	if got := mustBundle(t, resp, body); len(got.Entry) != 100 {
		t.Errorf("page 2 retried after the switch went off: %d entries", len(got.Entry))
	}
}

func TestSwitchPagingExpired(t *testing.T) {
	f := mustFixture(t, Switches{PagingExpired: true})
	p := patientSpecs[0]
	tok := f.mustToken(t, p.id)
	resp, body := f.get(t, searchPath(p.id, 0), tok)
	b := mustBundle(t, resp, body)
	resp, body = f.get(t, b.next(), tok)
	if resp.StatusCode != http.StatusBadRequest || mustOutcome(t, body).code() != "4113" {
		t.Fatalf("first next link: status %d, body %.200s", resp.StatusCode, body)
	}
	// The expired session stays expired; a restarted search pages to the end.
	if resp, _ := f.get(t, b.next(), tok); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("expired session answered %d", resp.StatusCode)
	}
	count := 0
	for next := searchPath(p.id, 0); next != ""; {
		resp, body := f.get(t, next, tok)
		b := mustBundle(t, resp, body)
		for _, e := range b.Entry {
			if e.Search.Mode == "match" {
				count++
			}
		}
		next = b.next()
	}
	if count != p.results {
		t.Errorf("restarted search got %d results, want %d", count, p.results)
	}
}

func TestSwitchWrongSubject(t *testing.T) {
	f := mustFixture(t, Switches{WrongSubject: true})
	p := patientSpecs[0].id
	resp, body := f.get(t, searchPath(p, 0), f.mustToken(t, p))
	wrong := 0
	for _, e := range mustBundle(t, resp, body).Entry {
		var o observation
		if err := json.Unmarshal(e.Resource, &o); err != nil {
			t.Fatal(err)
		}
		if e.Search.Mode == "match" && o.Subject.Reference != "Patient/"+p {
			wrong++
		}
	}
	if wrong != 1 {
		t.Errorf("%d observations name another subject, want 1", wrong)
	}
}

func TestSwitchLatency(t *testing.T) {
	f := mustFixture(t, Switches{})
	p := patientSpecs[0].id
	tok := f.mustToken(t, p)
	f.sim.SetSwitches(Switches{Latency: 150 * time.Millisecond})
	if got := f.sim.Switches().Latency; got != 150*time.Millisecond {
		t.Fatalf("Switches().Latency = %v", got)
	}
	start := time.Now()
	if resp, _ := f.get(t, "/fhir/R4/Patient/"+p, tok); resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if took := time.Since(start); took < 150*time.Millisecond {
		t.Errorf("request took %v, want at least 150ms", took)
	}
}

func TestDeterministicBundles(t *testing.T) {
	var got [2][]json.RawMessage
	for i := range got {
		f := mustFixture(t, Switches{})
		p := patientSpecs[1].id
		resp, body := f.get(t, searchPath(p, 1000), f.mustToken(t, p))
		for _, e := range mustBundle(t, resp, body).Entry {
			got[i] = append(got[i], e.Resource)
		}
	}
	if len(got[0]) == 0 {
		t.Fatal("no entries")
	}
	if diff := cmp.Diff(got[0], got[1]); diff != "" {
		t.Errorf("two simulators differ (-first +second):\n%s", diff)
	}
}

func TestMetadata(t *testing.T) {
	f := mustFixture(t, Switches{})
	tests := []struct {
		name, path, accept, wantType string
	}{
		{"json by Accept", "/fhir/R4/metadata", "application/fhir+json", "application/fhir+json"},
		{"json by _format", "/fhir/R4/metadata?_format=json", "", "application/fhir+json"},
		{"xml by default", "/fhir/R4/metadata", "", "application/fhir+xml"},
		{"xml for */*", "/fhir/R4/metadata", "*/*", "application/fhir+xml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hdr []string
			if tt.accept != "" {
				hdr = []string{"Accept", tt.accept}
			}
			resp, body := f.get(t, tt.path, "", hdr...)
			if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), tt.wantType) {
				t.Fatalf("status %d, content type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			if tt.wantType == "application/fhir+xml" {
				if !strings.Contains(string(body), `<extension url="authorize"><valueUri value="`+f.sim.AuthorizeURL()+`"/>`) {
					t.Errorf("XML lacks the authorize URI: %.500s", body)
				}
				return
			}
			var cs struct {
				ResourceType string `json:"resourceType"`
				Rest         []struct {
					Security struct {
						Extension []struct {
							URL       string `json:"url"`
							Extension []struct {
								URL      string `json:"url"`
								ValueURI string `json:"valueUri"`
							} `json:"extension"`
						} `json:"extension"`
					} `json:"security"`
				} `json:"rest"`
			}
			if err := json.Unmarshal(body, &cs); err != nil {
				t.Fatal(err)
			}
			uris := map[string]string{}
			for _, ext := range cs.Rest[0].Security.Extension {
				if ext.URL == oauthURIsExtURL {
					for _, e := range ext.Extension {
						uris[e.URL] = e.ValueURI
					}
				}
			}
			want := map[string]string{"authorize": f.sim.AuthorizeURL(), "token": f.sim.TokenURL()}
			if cs.ResourceType != "CapabilityStatement" || !cmp.Equal(uris, want) {
				t.Errorf("resourceType %q, oauth-uris %v", cs.ResourceType, uris)
			}
		})
	}
}
