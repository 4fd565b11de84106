package ehrsim

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"testing"

	"github.com/PuerkitoBio/goquery"
	"github.com/google/go-cmp/cmp"
)

func mustDoc(t *testing.T, body []byte) *goquery.Document {
	t.Helper()
	doc, err := goquery.NewDocumentFromReader(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

func TestLaunchpad(t *testing.T) {
	f := mustFixture(t, Switches{})
	resp, body := f.get(t, "/", "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	doc := mustDoc(t, body)
	for _, p := range f.sim.Patients() {
		row := doc.Find(`[data-testid="patient-` + p.ID + `"]`)
		if got := row.Find(`[data-testid="patient-name"]`).Text(); got != p.Name {
			t.Errorf("name = %q, want %q", got, p.Name)
		}
		href, _ := row.Find(`[data-testid="launch-` + p.ID + `"]`).Attr("href")
		if href != "/hyperspace?patient="+p.ID {
			t.Errorf("launch href = %q", href)
		}
	}
	href, _ := doc.Find(`[data-testid="standalone-launch"]`).Attr("href")
	if href != appLaunchURL+"?iss="+url.QueryEscape(f.sim.ISS()) {
		t.Errorf("standalone href = %q", href)
	}
	if resp, _ := f.get(t, "/nothing", ""); resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown page: status %d", resp.StatusCode)
	}
}

func TestHyperspaceLaunch(t *testing.T) {
	f := mustFixture(t, Switches{})
	p := f.sim.Patients()[1]
	resp, body := f.get(t, "/hyperspace?patient="+p.ID, "")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("status %d, Cache-Control %q", resp.StatusCode, resp.Header.Get("Cache-Control"))
	}
	doc := mustDoc(t, body)
	if got := doc.Find(`[data-testid="chart-patient"]`).Text(); got != p.Name {
		t.Errorf("header = %q, want %q", got, p.Name)
	}
	src, _ := doc.Find(`iframe[data-testid="app-frame"]`).Attr("src")
	u, err := url.Parse(src)
	if err != nil {
		t.Fatal(err)
	}
	if u.Scheme+"://"+u.Host+u.Path != appLaunchURL || u.Query().Get("iss") != f.sim.ISS() || len(u.Query().Get("launch")) < 300 {
		t.Fatalf("frame src = %.120s", src)
	}
	// The minted launch token is usable once, for the default (confidential) client and this patient.
	v, verifier := f.ehrLaunchParams(t, p.ID, secretClient, defaultScope)
	v.Set("launch", u.Query().Get("launch"))
	loc := mustLocation(t, f.authorize(t, v))
	status, tok := f.tokenRequest(t, codeForm(loc.Query().Get("code"), verifier), secretClient, testSecret)
	if status != http.StatusOK || tok["patient"] != p.ID {
		t.Errorf("token: status %d, patient %v", status, tok["patient"])
	}
	if resp, _ := f.get(t, "/hyperspace?patient=nobody", ""); resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown patient: status %d", resp.StatusCode)
	}
	if resp, _ := f.get(t, "/hyperspace?patient="+p.ID+"&client=nobody", ""); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("unknown client: status %d", resp.StatusCode)
	}
}

func TestStyleSwitch(t *testing.T) {
	f := mustFixture(t, Switches{})
	style := func() map[string]string {
		t.Helper()
		resp, body := f.get(t, "/styles/smart.json", "")
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("status %d, Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		var m map[string]string
		if err := json.Unmarshal(body, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	if diff := cmp.Diff(DefaultStyle(), style()); diff != "" {
		t.Errorf("default style (-want +got):\n%s", diff)
	}
	f.sim.SetSwitches(Switches{Style: LowContrastStyle()})
	got := style()
	if diff := cmp.Diff(LowContrastStyle(), got); diff != "" {
		t.Errorf("low-contrast style (-want +got):\n%s", diff)
	}
	if got["color_highlight"] == DefaultStyle()["color_highlight"] {
		t.Error("the low-contrast style has the default highlight")
	}
}
