package fhir

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"smartlabs/server/bench/simclient"
	"smartlabs/server/ehrsim"
)

// decodeResult is what a decoder gives for one body, in comparable form.
type decodeResult struct {
	Page *page
	Err  string
}

func decodeWith(f func([]byte, string) (*page, error), body []byte, pid string) decodeResult {
	p, err := f(body, pid)
	r := decodeResult{Page: p}
	if err != nil {
		r.Err = err.Error()
		if fe, ok := err.(*Error); ok {
			r.Err = fmt.Sprintf("%s %d %s", fe.Kind, fe.Status, fe.Error())
		}
	}
	return r
}

// mustSameDecode checks that decodeBundle (streaming, with its fallback)
// gives exactly what decodeBundleReflect gives, and reports whether the
// streaming decoder handled the body itself.
func mustSameDecode(t testing.TB, body []byte, pid string) (streamed bool) {
	t.Helper()
	want := decodeWith(decodeBundleReflect, body, pid)
	got := decodeWith(decodeBundle, body, pid)
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(page{}, entryTimes{})); diff != "" {
		t.Fatalf("stream decoder differs from reflection decoder (-reflect +stream):\n%s", diff)
	}
	_, err := decodeBundleStream(body, pid)
	return err != errFallback
}

// wrapEntries makes a searchset Bundle of the given resources.
func wrapEntries(resources ...string) []byte {
	var b strings.Builder
	b.WriteString(`{"resourceType":"Bundle","type":"searchset","total":` + fmt.Sprint(len(resources)) + `,"link":[{"relation":"self","url":"http://x/a"},{"relation":"next","url":"http://x/b"}],"entry":[`)
	for i, r := range resources {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(`{"fullUrl":"http://x/Observation/1","resource":` + r + `,"search":{"mode":"match"}}`)
	}
	b.WriteString("]}")
	return []byte(b.String())
}

var (
	simOnce  sync.Once
	simPages map[string][][]byte // patient id -> every search page
	simErr   error
)

// mustSimPages fetches every simulator patient's full search (page size 100)
// through the simulator's own OAuth flow, once per process.
func mustSimPages(t testing.TB) map[string][][]byte {
	t.Helper()
	simOnce.Do(func() {
		sim, err := ehrsim.New(ehrsim.Options{BaseURL: "http://127.0.0.1", Clients: []ehrsim.Client{{ID: "list", Public: true, RedirectURIs: []string{"http://127.0.0.1/cb"}}}})
		if err != nil {
			simErr = err
			return
		}
		simPages = map[string][][]byte{}
		for _, info := range sim.Patients() {
			f, err := simclient.SimPages(info.Name, 100)
			if err != nil {
				simErr = fmt.Errorf("patient %d: %w", len(simPages), err)
				return
			}
			var p struct {
				ID string `json:"id"`
			}
			if err := json.Unmarshal(f.Patient, &p); err != nil {
				simErr = err
				return
			}
			simPages[p.ID] = f.Pages
		}
	})
	if simErr != nil {
		t.Fatal(simErr)
	}
	return simPages
}

// TestStreamMatchesReflectSimulator compares both decoders on every page of
// every simulator patient, for the right patient and for another one.
func TestStreamMatchesReflectSimulator(t *testing.T) {
	all := mustSimPages(t)
	if len(all) < 2 {
		t.Fatalf("simulator has %d patients, want several", len(all))
	}
	pages, results := 0, 0
	for pid, ps := range all {
		for i, body := range ps {
			if !mustSameDecode(t, body, pid) {
				t.Errorf("patient page %d: streaming decoder fell back on simulator data", i)
			}
			mustSameDecode(t, body, "someone-else")
			p, err := decodeBundle(body, pid)
			if err != nil {
				t.Fatalf("page %d: %v", i, err)
			}
			pages++
			results += len(p.observations)
		}
	}
	if results < 5000 {
		t.Errorf("compared %d results on %d pages, want at least 5,000", results, pages)
	}
}

// TestStreamMatchesReflectFixtures compares both decoders on every fixture.
func TestStreamMatchesReflectFixtures(t *testing.T) {
	files, err := filepath.Glob("testdata/obs-*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	var all []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, string(b))
		t.Run(filepath.Base(f), func(t *testing.T) {
			if !mustSameDecode(t, wrapEntries(string(b)), "p1") {
				t.Error("streaming decoder fell back on a fixture")
			}
		})
	}
	if !mustSameDecode(t, wrapEntries(all...), "p1") {
		t.Error("streaming decoder fell back on all fixtures together")
	}
}

const (
	okObs  = `{"resourceType":"Observation","id":"a","status":"final","code":{"text":"K"},"subject":{"reference":"Patient/p1"},"valueQuantity":{"value":4.1,"unit":"mmol/L"}}`
	badObs = `{"resourceType":"Observation","id":"b","status":"final","subject":{"reference":"Patient/p2"}}`
	oo     = `{"resourceType":"OperationOutcome","issue":[{"severity":"warning","code":"x","details":{"coding":[{"code":"4119"}]}}]}`
)

// TestStreamMatchesReflectEdges compares both decoders on bodies chosen to
// reach every fallback and every check; want says whether the streaming
// decoder should handle the body itself.
func TestStreamMatchesReflectEdges(t *testing.T) {
	tests := []struct {
		name     string
		body     string
		streamed bool
	}{
		{"plain", string(wrapEntries(okObs, oo)), true},
		{"empty bundle", `{"resourceType":"Bundle"}`, true},
		{"escaped strings", string(wrapEntries(`{"resourceType":"Observation","subject":{"reference":"Patient\/p1"},"code":{"text":"a\"b\u00e9\n"},"valueString":"x\\y"}`)), true},
		{"unicode", string(wrapEntries(`{"resourceType":"Observation","subject":{"reference":"Patient/p1"},"code":{"text":"Hämoglobin ✓ 😀"}}`)), true},
		{"entered in error", string(wrapEntries(okObs, `{"resourceType":"Observation","status":"entered-in-error","subject":{"reference":"Patient/p1"}}`)), true},
		{"full url subject", string(wrapEntries(`{"resourceType":"Observation","subject":{"reference":"https://e/fhir/Patient/p1"}}`)), true},
		{"wrong patient", string(wrapEntries(okObs, badObs)), true},
		{"wrong patient then bad json", string(wrapEntries(badObs)) + "x", false},
		{"wrong patient then null", string(wrapEntries(badObs, `null`)), false},
		{"other resource types", string(wrapEntries(`{"resourceType":"Patient","id":"p1","code":[1,2],"status":{"a":true}}`, okObs)), false},
		{"other resource plain", string(wrapEntries(`{"resourceType":"Specimen","id":"s","status":"available","meta":{"tag":[{"x":[1,-2.5e+3,true,false,null]}]}}`, okObs)), true},
		{"null field", string(wrapEntries(`{"resourceType":"Observation","status":null,"subject":{"reference":"Patient/p1"}}`)), false},
		{"null resource", string(wrapEntries(`null`)), false},
		{"null value", string(wrapEntries(`{"resourceType":"Observation","subject":{"reference":"Patient/p1"},"valueQuantity":{"value":null}}`)), false},
		{"string value", string(wrapEntries(`{"resourceType":"Observation","subject":{"reference":"Patient/p1"},"valueQuantity":{"value":"5"}}`)), false},
		{"number forms", string(wrapEntries(`{"resourceType":"Observation","subject":{"reference":"Patient/p1"},"valueQuantity":{"value":-0.50E+2},"referenceRange":[{"low":{"value":0},"high":{"value":1e400}}]}`)), true},
		{"bad number", string(wrapEntries(`{"resourceType":"Observation","subject":{"reference":"Patient/p1"},"valueQuantity":{"value":01}}`)), false},
		{"bad number dot", string(wrapEntries(`{"resourceType":"Observation","subject":{"reference":"Patient/p1"},"valueQuantity":{"value":1.}}`)), false},
		{"duplicate known name", string(wrapEntries(`{"resourceType":"Observation","subject":{"reference":"Patient/p1"},"subject":{"reference":"Patient/p2"}}`)), false},
		{"duplicate unknown name", string(wrapEntries(`{"resourceType":"Observation","subject":{"reference":"Patient/p1"},"meta":{"a":1,"a":2}}`)), false},
		{"escaped duplicate name", string(wrapEntries(`{"resourceType":"Observation","subject":{"reference":"Patient/p1"},"st\u0061tus":"final","status":"x"}`)), false},
		{"escaped name", string(wrapEntries(`{"resourceType":"Observation","subject":{"reference":"Patient/p1"},"st\u0061tus":"final"}`)), false},
		{"case differs", string(wrapEntries(`{"resourceType":"Observation","subject":{"reference":"Patient/p1"},"Status":"final"}`)), true},
		{"invalid utf8", "{\"resourceType\":\"Bundle\",\"x\":\"\xff\"}", false},
		{"control char", "{\"resourceType\":\"Bundle\",\"x\":\"a\tb\"}", false},
		{"bad escape", `{"resourceType":"Bundle","x":"\q"}`, false},
		{"lone surrogate", `{"resourceType":"Bundle","x":"\ud800"}`, false},
		{"trailing data", `{"resourceType":"Bundle"} {}`, false},
		{"trailing comma", `{"resourceType":"Bundle",}`, false},
		{"truncated", string(wrapEntries(okObs))[:200], false},
		{"not a bundle", `{"resourceType":"Observation"}`, false},
		{"no type", `{"entry":[]}`, false},
		{"array", `[]`, false},
		{"total forms", `{"resourceType":"Bundle","total":0}`, true},
		{"negative total", `{"resourceType":"Bundle","total":-1}`, false},
		{"fraction total", `{"resourceType":"Bundle","total":1.5}`, false},
		{"huge total", `{"resourceType":"Bundle","total":123456789012345678901234}`, false},
		{"bad literal", `{"resourceType":"Bundle","x":tru}`, false},
		{"whitespace", " \n\t{ \"resourceType\" : \"Bundle\" , \"entry\" : [ ] } \r\n", true},
		{"deep", `{"resourceType":"Bundle","x":` + strings.Repeat("[", 300) + strings.Repeat("]", 300) + `}`, false},
		{"components", string(wrapEntries(`{"resourceType":"Observation","subject":{"reference":"Patient/p1"},"component":[{"code":{"coding":[{"system":"http://loinc.org","code":"8480-6"}]},"valueQuantity":{"value":120},"interpretation":[{"text":"H"}]},{"valueString":"x","dataAbsentReason":{"text":"n"}}],"hasMember":[{"reference":"Observation/1"}],"derivedFrom":[{"reference":"Observation/2"}],"effectivePeriod":{"start":"2024-01-02"},"issued":"2024-01-02T03:04:05Z"}`)), true},
		{"epic shapes", string(wrapEntries(`{"resourceType":"Observation","subject":{"reference":"Patient/p1","display":"X"},"basedOn":[{"reference":"ServiceRequest/1","display":"BMP"},{"display":"only text"}],"specimen":{"display":"Blood"},"performer":[{"reference":"Organization/2","display":"Lab"}],"note":[{"text":"a"},{"time":"2024-01-01","text":"b"},{}],"referenceRange":[{"type":{"text":"normal"},"appliesTo":[{"text":"Female"},{"coding":[{"code":"248152002"}]}],"age":{"low":{"value":18,"code":"a"},"high":{"value":65,"code":"a"}}},{"age":{}}]}`)), true},
		{"null note text", string(wrapEntries(`{"resourceType":"Observation","subject":{"reference":"Patient/p1"},"note":[{"text":null}]}`)), false},
		{"null display", string(wrapEntries(`{"resourceType":"Observation","subject":{"reference":"Patient/p1","display":null}}`)), false},
		{"issue wrong type on observation", string(wrapEntries(`{"resourceType":"Observation","subject":{"reference":"Patient/p1"},"issue":"x"}`)), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := mustSameDecode(t, []byte(tt.body), "p1"); got != tt.streamed {
				t.Errorf("streamed = %v, want %v", got, tt.streamed)
			}
		})
	}
}

// FuzzStreamMatchesReflect checks that both decoders agree on any body.
func FuzzStreamMatchesReflect(f *testing.F) {
	for _, name := range []string{"obs-quantity-comparator", "obs-epic", "obs-components", "obs-absent", "obs-corrected", "obs-codeable", "obs-string", "obs-period"} {
		b, err := os.ReadFile("testdata/" + name + ".json")
		if err != nil {
			f.Fatal(err)
		}
		f.Add(wrapEntries(string(b)))
	}
	f.Add(wrapEntries(okObs, oo, badObs))
	f.Add([]byte(`{"resourceType":"Bundle","total":3,"entry":[{"resource":null}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		mustSameDecode(t, body, "p1")
	})
}
