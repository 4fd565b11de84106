package labs_test

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"
	"github.com/google/go-cmp/cmp"

	"smartlabs/components/internal/htmlcheck"
	"smartlabs/components/labs"
	"smartlabs/components/layout"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// text is the whitespace-normalised text of s.
func text(s *goquery.Selection) string {
	return strings.Join(strings.Fields(s.Text()), " ")
}

// mustFragmentDoc renders the fragment of p and parses it.
func mustFragmentDoc(t *testing.T, p labs.Props) *goquery.Document {
	t.Helper()
	return htmlcheck.MustParse(t, htmlcheck.MustRender(t, labs.Fragment(p)))
}

// baseProps is a view model with everything optional left empty.
func baseProps(rows ...labs.Row) labs.Props {
	return labs.Props{
		LaunchID:   "L1",
		Rows:       rows,
		Total:      len(rows),
		RefreshURL: "/launch/L1/labs",
		LogoutURL:  "/launch/L1/logout",
		Generated:  "2024-03-03 10:00",
	}
}

// shapes are one result of each kind the FHIR layer produces.
var shapes = map[string]labs.Row{
	"quantity": {
		ID: "obs-k", Name: "Potassium", Value: "5.4", Unit: "mmol/L", Range: "3.5–5.1",
		Flag: labs.FlagHigh, FlagText: "High", Collected: "2 Mar 2024 08:15",
		CollectedISO: "2024-03-02T08:15:00-05:00", Status: "final",
	},
	"string": {
		ID: "obs-s", Name: "Urine colour", Value: "Dark yellow", Collected: "1 Mar 2024 07:00",
		CollectedISO: "2024-03-01T07:00:00Z", Status: "final",
	},
	"codeable": {
		ID: "obs-c", Name: "HIV 1+2 Ab", Value: "Positive", Range: "Negative",
		Flag: labs.FlagAbnormal, FlagText: "Abnormal", Collected: "28 Feb 2024 12:00",
		CollectedISO: "2024-02-28T12:00:00Z", Status: "preliminary", StatusNote: "Preliminary",
	},
	"components": {
		ID: "obs-bp", Name: "Blood pressure", Collected: "27 Feb 2024 09:30",
		CollectedISO: "2024-02-27T09:30:00Z", Status: "final",
		Components: []labs.Component{
			{Name: "Systolic", Value: "182", Unit: "mm[Hg]", Range: "90–120", Flag: labs.FlagCriticalHigh, FlagText: "Critical high"},
			{Name: "Diastolic", Value: "85", Unit: "mm[Hg]", Range: "60–80", Flag: labs.FlagHigh},
			{Name: "Mean", Absent: "Not performed"},
		},
	},
	"absent": {
		ID: "obs-a", Name: "Glucose", Absent: "Not performed", Range: "3.9–5.5",
		Collected: "26 Feb 2024 06:00", CollectedISO: "2024-02-26T06:00:00Z", Status: "final",
	},
	"computed": {
		ID: "obs-kc", Name: "Potassium", Value: "5.6", Unit: "mmol/L", Range: "3.5–5.1",
		Flag: labs.FlagHigh, FlagText: "High", FlagHint: "outside 3.5–5.1", Collected: "2 Mar 2024 08:15",
		CollectedISO: "2024-03-02T08:15:00-05:00", Status: "final",
	},
	"noted": {
		ID: "obs-g", Name: "Glucose", Value: "128", Unit: "mg/dL", Range: "70–99",
		Flag: labs.FlagHigh, FlagText: "High", FlagHint: "outside 70–99", Collected: "2 Mar 2024 07:40",
		CollectedISO: "2024-03-02T07:40:00-05:00", Status: "final",
		Notes: []string{"PATIENT WAS NOT FASTING. Glucose <b>may</b> be raised;\nrepeat fasting.", "Second note."},
	},
	"corrected": {
		ID: "obs-na", Name: "Sodium", Value: "128", Unit: "mmol/L", Range: "135–145",
		Flag: labs.FlagCriticalLow, Collected: "25 Feb 2024 10:00",
		CollectedISO: "2024-02-25T10:00:00Z", Status: "corrected", StatusNote: "Corrected",
	},
}

func TestRowShapes(t *testing.T) {
	type want struct {
		name, value, unit, absent, rng, flag, collected, datetime, statusNote, status string
		components                                                                    []string
		critical                                                                      bool
	}
	tests := map[string]want{
		"quantity": {name: "Potassium", value: "5.4", unit: "mmol/L", rng: "3.5–5.1", flag: "▲ High",
			collected: "2 Mar 2024 08:15", datetime: "2024-03-02T08:15:00-05:00", status: "Final"},
		"string": {name: "Urine colour", value: "Dark yellow", rng: "— none", flag: "— none",
			collected: "1 Mar 2024 07:00", datetime: "2024-03-01T07:00:00Z", status: "Final"},
		"codeable": {name: "HIV 1+2 Ab", value: "Positive", rng: "Negative", flag: "! Abnormal",
			collected: "28 Feb 2024 12:00", datetime: "2024-02-28T12:00:00Z", statusNote: "Preliminary", status: "Preliminary"},
		"components": {name: "Blood pressure", rng: "— none", flag: "— none",
			collected: "27 Feb 2024 09:30", datetime: "2024-02-27T09:30:00Z", status: "Final", critical: true,
			components: []string{
				"Systolic: 182 mm[Hg] ▲▲ Critical high (ref 90–120)",
				"Diastolic: 85 mm[Hg] ▲ High (ref 60–80)",
				"Mean: No value: Not performed",
			}},
		"absent": {name: "Glucose", absent: "No value: Not performed", rng: "3.9–5.5", flag: "— none",
			collected: "26 Feb 2024 06:00", datetime: "2024-02-26T06:00:00Z", status: "Final"},
		"computed": {name: "Potassium", value: "5.6", unit: "mmol/L", rng: "3.5–5.1", flag: "▲ High outside 3.5–5.1",
			collected: "2 Mar 2024 08:15", datetime: "2024-03-02T08:15:00-05:00", status: "Final"},
		"noted": {name: "Glucose", value: "128", unit: "mg/dL", rng: "70–99", flag: "▲ High outside 70–99",
			collected: "2 Mar 2024 07:40", datetime: "2024-03-02T07:40:00-05:00", status: "Final"},
		"corrected": {name: "Sodium", value: "128", unit: "mmol/L", rng: "135–145", flag: "▼▼ Critical low",
			collected: "25 Feb 2024 10:00", datetime: "2024-02-25T10:00:00Z", statusNote: "Corrected", status: "Corrected", critical: true},
	}
	for shape, w := range tests {
		t.Run(shape, func(t *testing.T) {
			r := shapes[shape]
			doc := mustFragmentDoc(t, baseProps(r))
			rows := doc.Find(`[data-testid="result-row"]`)
			if rows.Length() != 1 {
				t.Fatalf("got %d result rows, want 1", rows.Length())
			}
			if id, _ := rows.Attr("data-id"); id != r.ID {
				t.Errorf("data-id = %q, want %q", id, r.ID)
			}
			// Top-level value cells only: components have their own value spans.
			top := rows.Find(`[data-testid="result"] > div > [data-testid]`)
			got := want{
				name:       text(rows.Find(`[data-testid="name"]`)),
				value:      text(top.Filter(`[data-testid="value"]`)),
				unit:       text(top.Filter(`[data-testid="unit"]`)),
				absent:     text(top.Filter(`[data-testid="absent"]`)),
				rng:        text(rows.Find(`[data-testid="range"] > :not([aria-hidden])`)),
				flag:       text(rows.Find(`[data-testid="flag-cell"] > :not([aria-hidden])`)),
				collected:  text(rows.Find(`[data-testid="collected"] time`)),
				statusNote: text(rows.Find(`[data-testid="status-note"]`)),
				status:     text(rows.Find(`[data-testid="status"] > :not([aria-hidden])`)),
				critical:   rows.AttrOr("data-critical", "") == "true",
			}
			got.datetime, _ = rows.Find(`[data-testid="collected"] time`).Attr("datetime")
			rows.Find(`[data-testid="component"]`).Each(func(_ int, s *goquery.Selection) {
				got.components = append(got.components, text(s))
			})
			if diff := cmp.Diff(w, got, cmp.AllowUnexported(want{})); diff != "" {
				t.Errorf("row (-want +got):\n%s", diff)
			}
			if absent := rows.Find(`[data-testid="absent"]`); w.absent != "" && goquery.NodeName(absent) != "em" {
				t.Errorf("absent reason is in <%s>, want <em>", goquery.NodeName(absent))
			}
		})
	}
}

func TestFlagsHaveTextNotOnlyColour(t *testing.T) {
	tests := []struct {
		flag     labs.Flag
		flagText string
		want     string
		critical bool
	}{
		{labs.FlagHigh, "", "▲ High", false},
		{labs.FlagLow, "", "▼ Low", false},
		{labs.FlagAbnormal, "", "! Abnormal", false},
		{labs.FlagCriticalHigh, "", "▲▲ Critical high", true},
		{labs.FlagCriticalLow, "", "▼▼ Critical low", true},
		{labs.FlagCriticalOther, "", "!! Critical abnormal", true},
		{labs.FlagHigh, "Above high normal", "▲ Above high normal", false},
		{labs.Flag("W"), "Worse", "Worse", false},
	}
	for _, tt := range tests {
		t.Run(string(tt.flag)+tt.flagText, func(t *testing.T) {
			doc := mustFragmentDoc(t, baseProps(labs.Row{ID: "1", Name: "X", Value: "1", Flag: tt.flag, FlagText: tt.flagText}))
			f := doc.Find(`[data-testid="flag"]`)
			if f.Length() != 1 {
				t.Fatalf("got %d flags, want 1", f.Length())
			}
			if got := text(f); got != tt.want {
				t.Errorf("flag text = %q, want %q", got, tt.want)
			}
			if got := f.AttrOr("data-flag", ""); got != string(tt.flag) {
				t.Errorf("data-flag = %q, want %q", got, tt.flag)
			}
			if got := f.AttrOr("data-critical", "") == "true"; got != tt.critical {
				t.Errorf("critical = %v, want %v", got, tt.critical)
			}
			if tt.critical && !f.HasClass("font-bold") {
				t.Errorf("critical flag lacks the stronger style: class %q", f.AttrOr("class", ""))
			}
			// The words must be readable text, not hidden from assistive technology.
			words := f.Find(`span:not([aria-hidden])`)
			if strings.TrimSpace(words.Text()) == "" {
				t.Error("flag has no text visible to assistive technology")
			}
		})
	}
}

// TestComputedFlagHint: a flag smartlabs computed shows the lab's words and
// symbol and, visibly and to assistive technology, the range it is outside;
// a lab's flag has no hint.
func TestComputedFlagHint(t *testing.T) {
	computed, lab := shapes["computed"], shapes["quantity"]
	for _, p := range []labs.Props{baseProps(computed, lab), summaryProps(computed)} {
		doc := mustFragmentDoc(t, p)
		var got []string
		doc.Find(`[data-testid="flag"]`).Each(func(_ int, f *goquery.Selection) {
			hint := f.NextFiltered(`[data-testid="flag-hint"]`)
			got = append(got, text(f)+"|"+f.AttrOr("data-computed", "")+"|"+text(hint))
			if hint.Length() > 0 && (hint.AttrOr("aria-hidden", "") != "" || hint.HasClass("sr-only")) {
				t.Error("the hint is hidden")
			}
		})
		want := []string{"▲ High|true|outside 3.5–5.1", "▲ High||"}
		if p.Mode == labs.ModeSummary {
			want = want[:1]
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("mode %d flags (-want +got):\n%s", p.Mode, diff)
		}
	}
}

// TestNotes: all results show every note in full, as sent; the summary line
// shows a marker with the first words, whose text for assistive technology
// is the whole note.
func TestNotes(t *testing.T) {
	r := shapes["noted"]
	doc := mustFragmentDoc(t, baseProps(r))
	var got []string
	doc.Find(`[data-testid="result-row"] [data-testid="note"]`).Each(func(_ int, s *goquery.Selection) { got = append(got, s.Text()) })
	want := []string{"Note: PATIENT WAS NOT FASTING. Glucose <b>may</b> be raised;\nrepeat fasting.", "Note: Second note."}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("notes (-want +got):\n%s", diff)
	}
	if !doc.Find(`[data-testid="note"]`).HasClass("whitespace-pre-line") {
		t.Error("line breaks of notes are not kept")
	}

	doc = mustFragmentDoc(t, summaryProps(r))
	m := doc.Find(`[data-testid="summary-line"] [data-testid="note-marker"]`)
	if m.Length() != 1 {
		t.Fatalf("%d note markers", m.Length())
	}
	if got := text(m.Find(`[aria-hidden="true"]`)); got != "✎ Note: PATIENT WAS NOT FASTING. Glucose…" {
		t.Errorf("visible marker %q", got)
	}
	if got := text(m.Find(".sr-only")); got != "Note: PATIENT WAS NOT FASTING. Glucose <b>may</b> be raised; repeat fasting. Second note." {
		t.Errorf("marker for assistive technology %q", got)
	}
	if m.AttrOr("title", "") != r.Notes[0]+"\n"+r.Notes[1] {
		t.Errorf("marker title %q", m.AttrOr("title", ""))
	}
	if doc.Find(`[data-testid="summary-line"] [data-testid="note"]`).Length() != 0 {
		t.Error("the summary shows the note in full")
	}
}

func TestBanner(t *testing.T) {
	tests := []struct {
		name   string
		banner *labs.Banner
		want   map[string]string // data-testid -> text; nil means no banner
	}{
		{name: "hidden", banner: nil},
		{
			name:   "full",
			banner: &labs.Banner{Name: "Jane Doe", BirthDate: "1975-03-02", Sex: "Female", MRN: "E1234"},
			want:   map[string]string{"banner-name": "Jane Doe", "banner-birthdate": "1975-03-02", "banner-sex": "Female", "banner-mrn": "E1234"},
		},
		{
			name:   "no MRN",
			banner: &labs.Banner{Name: "John Roe", BirthDate: "1960-01-01", Sex: "Male"},
			want:   map[string]string{"banner-name": "John Roe", "banner-birthdate": "1960-01-01", "banner-sex": "Male"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := baseProps(shapes["quantity"])
			p.Banner = tt.banner
			doc := htmlcheck.MustParse(t, htmlcheck.MustRender(t, labs.View(p)))
			b := doc.Find(`[data-testid="patient-banner"]`)
			if tt.want == nil {
				if b.Length() != 0 {
					t.Fatalf("banner shown although Banner is nil")
				}
				return
			}
			if b.Length() != 1 {
				t.Fatalf("got %d banners, want 1", b.Length())
			}
			got := map[string]string{}
			b.Find(`[data-testid]`).Each(func(_ int, s *goquery.Selection) {
				got[s.AttrOr("data-testid", "")] = text(s)
			})
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("banner (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFragmentIsTheSwapTarget(t *testing.T) {
	p := baseProps(shapes["quantity"])
	p.Banner = &labs.Banner{Name: "Jane Doe"}
	view := htmlcheck.MustParse(t, htmlcheck.MustRender(t, labs.View(p)))
	frag := mustFragmentDoc(t, p)
	if n := view.Find("#labs").Length(); n != 1 {
		t.Fatalf("view has %d #labs, want 1", n)
	}
	root := frag.Find("body > *")
	if root.Length() != 1 || root.AttrOr("id", "") != "labs" {
		t.Fatalf("fragment root is %d elements with id %q, want one with id labs", root.Length(), root.AttrOr("id", ""))
	}
	if frag.Find(`[data-testid="patient-banner"]`).Length() != 0 {
		t.Error("fragment carries the patient banner; it belongs to the view")
	}
	btn := frag.Find(`[data-testid="refresh"]`)
	for attr, want := range map[string]string{"hx-get": "/launch/L1/labs", "hx-target": "#labs", "hx-swap": "outerHTML", "type": "button"} {
		if got := btn.AttrOr(attr, ""); got != want {
			t.Errorf("refresh %s = %q, want %q", attr, got, want)
		}
	}
}

// TestLogoutButton: the Sign out button posts to the launch's logout URL with
// the CSRF header, has an accessible name, swaps nothing (the server answers
// HX-Redirect), and is absent when no logout URL is given.
func TestLogoutButton(t *testing.T) {
	tests := []struct {
		name      string
		logoutURL string
		header    string
		wantCount int
	}{
		{name: "with CSRF header", logoutURL: "/l/L1/logout", header: "X-Smartlabs-CSRF", wantCount: 1},
		{name: "no logout URL", wantCount: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := baseProps(shapes["quantity"])
			p.LogoutURL = tt.logoutURL
			p.CSRFHeaderName, p.CSRFHeaderValue = tt.header, "1"
			doc := mustFragmentDoc(t, p)
			btn := doc.Find(`[data-testid="logout"]`)
			if btn.Length() != tt.wantCount {
				t.Fatalf("%d logout buttons, want %d", btn.Length(), tt.wantCount)
			}
			if tt.wantCount == 0 {
				return
			}
			got := map[string]string{
				"tag":        goquery.NodeName(btn),
				"type":       btn.AttrOr("type", ""),
				"hx-post":    btn.AttrOr("hx-post", ""),
				"hx-swap":    btn.AttrOr("hx-swap", ""),
				"hx-headers": btn.AttrOr("hx-headers", ""),
				"name":       strings.TrimSpace(btn.Text()),
			}
			want := map[string]string{
				"tag": "button", "type": "button", "hx-post": tt.logoutURL, "hx-swap": "none",
				"hx-headers": `{"` + tt.header + `":"1"}`, "name": "Sign out",
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("logout button (-want +got):\n%s", diff)
			}
			if btn.AttrOr("hx-get", "") != "" {
				t.Error("logout must not be a GET")
			}
		})
	}
}

func TestResultCountAndGenerated(t *testing.T) {
	tests := []struct {
		rows int
		want string
	}{{0, "0 results"}, {1, "1 result"}, {3, "3 results"}}
	for _, tt := range tests {
		var rows []labs.Row
		for i := 0; i < tt.rows; i++ {
			rows = append(rows, labs.Row{ID: string(rune('a' + i)), Name: "X", Value: "1"})
		}
		doc := mustFragmentDoc(t, baseProps(rows...))
		if got := text(doc.Find(`[data-testid="result-count"]`)); got != tt.want {
			t.Errorf("%d rows: count = %q, want %q", tt.rows, got, tt.want)
		}
		if got := doc.Find(`[data-testid="result-row"]`).Length(); got != tt.rows {
			t.Errorf("%d rows: rendered %d rows", tt.rows, got)
		}
		if got := text(doc.Find(`[data-testid="generated"]`)); got != "as of 2024-03-03 10:00" {
			t.Errorf("generated = %q", got)
		}
	}
}

func TestEmptyState(t *testing.T) {
	doc := mustFragmentDoc(t, baseProps())
	if got := text(doc.Find(`[data-testid="empty"]`)); got != "No lab results found for this patient." {
		t.Errorf("empty state = %q", got)
	}
	if doc.Find("table").Length() != 0 {
		t.Error("empty list still renders a table")
	}
	doc = mustFragmentDoc(t, baseProps(shapes["string"]))
	if doc.Find(`[data-testid="empty"]`).Length() != 0 {
		t.Error("empty state shown although there are rows")
	}
}

func TestTableSemantics(t *testing.T) {
	doc := mustFragmentDoc(t, baseProps(shapes["quantity"], shapes["string"]))
	if doc.Find("table > caption").Length() != 1 {
		t.Error("table has no caption")
	}
	var headers []string
	doc.Find(`thead th[scope="col"]`).Each(func(_ int, s *goquery.Selection) { headers = append(headers, text(s)) })
	want := []string{"Test", "Result", "Reference range", "Flag", "Collected", "Status"}
	if diff := cmp.Diff(want, headers); diff != "" {
		t.Errorf("headers (-want +got):\n%s", diff)
	}
	doc.Find(`tbody tr`).Each(func(i int, s *goquery.Selection) {
		if n := s.Children().Length(); n != len(want) {
			t.Errorf("row %d has %d cells, want %d", i, n, len(want))
		}
	})
}

func TestNotices(t *testing.T) {
	notices := []labs.Notice{
		{Level: labs.NoticeInfo, Text: "No results before 2010."},
		{Level: labs.NoticeWarning, Text: "More data may exist."},
		{Level: labs.NoticeError, Text: "Page 3 could not be loaded."},
	}
	type got struct{ role, level, text string }
	tests := []struct {
		name       string
		incomplete bool
		wantList   []got
		wantBanner []got
	}{
		{
			name: "complete",
			wantList: []got{
				{"status", "info", "No results before 2010."},
				{"status", "warning", "More data may exist."},
				{"alert", "error", "Page 3 could not be loaded."},
			},
		},
		{
			name:       "incomplete",
			incomplete: true,
			wantList:   []got{{"status", "info", "No results before 2010."}},
			wantBanner: []got{{"", "warning", "More data may exist."}, {"", "error", "Page 3 could not be loaded."}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := baseProps(shapes["quantity"])
			p.Notices = notices
			p.Incomplete = tt.incomplete
			doc := mustFragmentDoc(t, p)
			collect := func(sel string) []got {
				var out []got
				doc.Find(sel).Each(func(_ int, s *goquery.Selection) {
					out = append(out, got{s.AttrOr("role", ""), s.AttrOr("data-level", ""), text(s)})
					if !s.HasClass("notice-" + s.AttrOr("data-level", "")) {
						t.Errorf("notice %q lacks its level class", text(s))
					}
				})
				return out
			}
			if diff := cmp.Diff(tt.wantList, collect(`[data-testid="notices"] [data-testid="notice"]`), cmp.AllowUnexported(got{})); diff != "" {
				t.Errorf("notice list (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantBanner, collect(`[data-testid="incomplete"] [data-testid="notice"]`), cmp.AllowUnexported(got{})); diff != "" {
				t.Errorf("incomplete banner notices (-want +got):\n%s", diff)
			}
		})
	}
}

func TestIncompleteBanner(t *testing.T) {
	for _, incomplete := range []bool{false, true} {
		p := baseProps(shapes["quantity"])
		p.Incomplete = incomplete
		doc := mustFragmentDoc(t, p)
		b := doc.Find(`[data-testid="incomplete"]`)
		if !incomplete {
			if b.Length() != 0 {
				t.Error("incomplete banner shown for a complete list")
			}
			continue
		}
		if b.Length() != 1 {
			t.Fatalf("got %d incomplete banners, want 1", b.Length())
		}
		if !strings.Contains(text(b), "This list is incomplete.") {
			t.Errorf("banner text %q lacks the plain statement", text(b))
		}
		if b.AttrOr("role", "") != "alert" {
			t.Errorf("banner role = %q, want alert", b.AttrOr("role", ""))
		}
		retry := b.Find(`button[data-testid="retry"]`)
		if got := retry.AttrOr("hx-get", ""); got != p.RefreshURL {
			t.Errorf("retry hx-get = %q, want %q", got, p.RefreshURL)
		}
		if got := retry.AttrOr("hx-target", ""); got != "#labs" {
			t.Errorf("retry hx-target = %q, want #labs", got)
		}
	}
}

func TestHXHeadersJSON(t *testing.T) {
	tests := []struct {
		name, header, value string
	}{
		{name: "plain", header: "X-CSRF-Token", value: "abc123"},
		{name: "hostile", header: "X-CSRF-Token", value: `"}<script>alert(1)</script>&'`},
		{name: "none"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := baseProps(shapes["quantity"])
			p.Incomplete = true
			p.CSRFHeaderName, p.CSRFHeaderValue = tt.header, tt.value
			html := htmlcheck.MustRender(t, labs.Fragment(p))
			doc := htmlcheck.MustParse(t, html)
			buttons := doc.Find(`button[hx-get]`)
			if buttons.Length() != 2 {
				t.Fatalf("got %d htmx buttons, want 2 (refresh, retry)", buttons.Length())
			}
			buttons.Each(func(_ int, b *goquery.Selection) {
				raw, ok := b.Attr("hx-headers")
				if tt.header == "" {
					if ok {
						t.Errorf("hx-headers %q set without a CSRF header", raw)
					}
					return
				}
				var got map[string]string
				if err := json.Unmarshal([]byte(raw), &got); err != nil {
					t.Fatalf("hx-headers %q is not JSON: %v", raw, err)
				}
				if diff := cmp.Diff(map[string]string{tt.header: tt.value}, got); diff != "" {
					t.Errorf("hx-headers (-want +got):\n%s", diff)
				}
			})
			htmlcheck.AssertCSPSafe(t, doc)
			if doc.Find("script").Length() != 0 {
				t.Error("a header value produced a <script> element")
			}
		})
	}
}

func TestEscaping(t *testing.T) {
	const evil = `<script>alert(1)</script>`
	r := labs.Row{
		ID: `x" onmouseover="alert(1)`, Name: evil, Value: evil, Unit: evil, Range: evil, FlagText: evil,
		Flag: labs.FlagHigh, Collected: evil, CollectedISO: evil, StatusNote: evil,
		Components: []labs.Component{{Name: evil, Value: evil, Unit: evil, Range: evil}},
	}
	p := baseProps(r)
	p.Banner = &labs.Banner{Name: evil, BirthDate: evil, Sex: evil, MRN: evil}
	p.Notices = []labs.Notice{{Level: labs.NoticeError, Text: evil}}
	html := htmlcheck.MustRender(t, layout.Page(layout.Props{Title: "Labs", CSSPath: "/static/a.css", JSPath: "/static/a.js"}, labs.View(p)))
	doc := htmlcheck.MustParse(t, html)
	if n := doc.Find("script").Length(); n != 1 {
		t.Errorf("page has %d <script> elements, want only the bundle", n)
	}
	if !strings.Contains(html, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Error("escaped name not found in the raw HTML")
	}
	if got := text(doc.Find(`[data-testid="name"]`)); got != evil {
		t.Errorf("name text = %q, want the literal %q", got, evil)
	}
	if got := doc.Find(`[data-testid="result-row"]`).AttrOr("data-id", ""); got != r.ID {
		t.Errorf("data-id = %q, want %q", got, r.ID)
	}
	htmlcheck.AssertCSPSafe(t, doc)
}

func TestFullPageIsCSPSafe(t *testing.T) {
	var rows []labs.Row
	for _, name := range []string{"quantity", "string", "codeable", "components", "absent", "corrected"} {
		rows = append(rows, shapes[name])
	}
	p := baseProps(rows...)
	p.Banner = &labs.Banner{Name: "Jane Doe", BirthDate: "1975-03-02", Sex: "Female", MRN: "E1"}
	p.Incomplete = true
	p.Notices = []labs.Notice{{Level: labs.NoticeInfo, Text: "i"}, {Level: labs.NoticeError, Text: "e"}}
	p.CSRFHeaderName, p.CSRFHeaderValue = "X-CSRF-Token", "t"
	doc := htmlcheck.MustParse(t, htmlcheck.MustRender(t, layout.Page(layout.Props{Title: "Labs"}, labs.View(p))))
	htmlcheck.AssertCSPSafe(t, doc)
	if doc.Find(`main [data-testid="labs-view"]`).Length() != 1 {
		t.Error("labs view is not inside <main>")
	}
}

// TestGolden compares the fragment of each result shape with testdata/<shape>.golden.html.
// Run `go test ./components/labs -update` to rewrite them after an intended change.
func TestGolden(t *testing.T) {
	for shape, r := range shapes {
		t.Run(shape, func(t *testing.T) {
			got := htmlcheck.MustRender(t, labs.Fragment(baseProps(r))) + "\n"
			path := filepath.Join("testdata", shape+".golden.html")
			if *update {
				if err := os.MkdirAll("testdata", 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("read golden (run with -update to create it): %v", err)
			}
			if diff := cmp.Diff(string(want), got); diff != "" {
				t.Errorf("%s differs from the golden file (-want +got):\n%s", path, diff)
			}
		})
	}
}
