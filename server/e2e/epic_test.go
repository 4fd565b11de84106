package e2e_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"smartlabs/server/e2e"
	"smartlabs/server/servertest"
)

// mustOpen loads u in the frame as a full page and waits until htmx is idle.
func mustOpen(t *testing.T, tab *e2e.Tab, u string) {
	t.Helper()
	mustEval(t, tab, `location.href = `+jsQuote(u), nil)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		var href string
		err := tab.Eval(frame, `document.readyState === "complete" ? location.href : ""`, &href)
		if err == nil && href == u {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never finished loading", u)
		}
	}
	waitIdle(t, tab)
}

// settledShot takes a README screenshot once the frame has drawn its view,
// after scrolling the element sel ("" for none) into view.
func settledShot(t *testing.T, tab *e2e.Tab, name, sel string) {
	t.Helper()
	if screenshotDir == "" {
		return
	}
	if sel != "" {
		mustEval(t, tab, `document.querySelector(`+jsQuote(sel)+`).scrollIntoView({block: "center"})`, nil)
	}
	mustEval(t, tab, `new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))`, nil)
	// The frame is drawn in its own process; give the compositor a moment
	// before the capture (only for screenshots, never a test condition).
	time.Sleep(500 * time.Millisecond)
	shot(t, tab, name)
}

// flagLine is a summary line or result row and its flag as shown.
type flagLine struct {
	Name     string `json:"name"`
	Flag     string `json:"flag"`
	Computed bool   `json:"computed"`
	Hint     string `json:"hint"`
}

// flagsJS lists the lines (rows) that match a selector with their flags;
// name is the selector of the test name inside a line.
const flagsJS = `((lines, name) => [...document.querySelectorAll(lines)].map(l => {
	const f = l.querySelector("[data-testid=flag]");
	return {name: l.querySelector(name).textContent.trim(), flag: f ? f.dataset.flag : "",
		computed: !!f && f.dataset.computed === "true", hint: l.querySelector("[data-testid=flag-hint]")?.textContent ?? ""};
}))`

// TestEpicPatientInFrame opens the patient with a production Epic system's
// shapes in the cross-site frame: flags computed where the lab sent none
// (on the right rows and no others), panels named by the lab reports, the
// note, ">60", "NR", the test with only the organisation's component code,
// and the flowsheet at 360 px without overflowing the page; axe finds no
// WCAG 2.1 A/AA violation on the new views, and no view asks the EHR again.
func TestEpicPatientInFrame(t *testing.T) {
	axeSrc := mustAxeSource(t)
	env := servertest.New(t, servertest.Options{})
	b := e2e.NewBrowser(t)
	tab := b.NewTab(t)
	if err := tab.SetViewport(1280, 900); err != nil {
		t.Fatal(err)
	}
	openChart(t, env, tab, "Moreau")
	waitIdle(t, tab)
	fhirBefore := env.CountSimRequests("/fhir/R4/")
	base, _ := tab.FrameURL(frame)
	base = base[:strings.Index(base, "/l/")+len("/l/")+22]

	// Summary: computed High/Low on exactly the out-of-range results the lab
	// did not flag; the lab's own H on the cholesterol; the MCV the lab
	// called normal unflagged.
	var lines []flagLine
	mustEval(t, tab, flagsJS+`("[data-testid=summary-line]", "[data-testid=analyte-link]")`, &lines)
	got := map[string]string{}
	for _, l := range lines {
		if l.Flag != "" {
			got[l.Name] = fmt.Sprintf("%s computed=%v %s", l.Flag, l.Computed, l.Hint)
		}
	}
	want := map[string]string{
		"Potassium":              "H computed=true outside 3.5–5.1",
		"Glucose":                "H computed=true outside 70–99",
		"Creatinine":             "H computed=true outside 0.59–1.04",
		"Hemoglobin":             "L computed=true outside 11.5–15.5",
		"LDL Cholesterol (calc)": "H computed=true above 99",
		"Cholesterol":            "H computed=false ",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("summary flags:\n got %v\nwant %v", got, want)
	}
	var pinned int
	mustEval(t, tab, `document.querySelectorAll("[data-kind=critical]").length`, &pinned)
	if pinned != 0 {
		t.Error("computed flags were pinned as critical")
	}

	// Panels named by the lab reports and orders, the report's lab and
	// conclusion, the note marker, >60, NR and the component-coded test.
	var groups []string
	mustEval(t, tab, `[...document.querySelectorAll("[data-testid=summary-group][data-kind=panel] caption")].map(c => c.firstChild.textContent.trim())`, &groups)
	for _, p := range []string{"BASIC METABOLIC PANEL", "CBC WITHOUT DIFFERENTIAL", "HEMOGLOBIN A1C", "HIV 1/2 AG/AB SCREEN", "LIPID PANEL"} {
		if !slices.Contains(groups, p) {
			t.Errorf("panel %q missing from %q", p, groups)
		}
	}
	for sel, want := range map[string]string{
		`[data-testid=summary-group]:has([data-testid=report-performer]) [data-testid=report-performer]`: "Riverside Core Laboratory",
		`[data-testid=report-conclusion]`: "Potassium may be falsely raised by hemolysis",
		`[data-testid=note-marker]`:       "PATIENT WAS NOT FASTING",
	} {
		if err := tab.WaitText(frame, sel, want, 5*time.Second); err != nil {
			t.Error(err)
		}
	}
	var cells map[string]string
	mustEval(t, tab, `Object.fromEntries([...document.querySelectorAll("[data-testid=summary-line]")].map(l =>
		[l.querySelector("[data-testid=analyte-link]").textContent.trim(),
		 l.querySelector("[data-testid=latest] [data-testid=value]")?.textContent.trim() + " | " + l.querySelector("[data-testid=range] > :not([aria-hidden])").textContent.trim()]))`, &cells)
	for name, want := range map[string]string{"eGFR": ">60 | ≥ 60", "HIV 1/2 Ag/Ab Screen": "Nonreactive | NR", "Anion Gap": "12 | 5–15"} {
		if got := strings.Join(strings.Fields(cells[name]), " "); got != want {
			t.Errorf("%s: %q, want %q", name, got, want)
		}
	}
	var gapKey string
	mustEval(t, tab, `[...document.querySelectorAll("[data-testid=summary-line]")].find(l => l.textContent.includes("Anion Gap")).dataset.key`, &gapKey)
	if gapKey != "c501-2-1547" {
		t.Errorf("anion gap is keyed %q, want its component code", gapKey)
	}
	settledShot(t, tab, "epic-summary.png", "")

	// All results: computed flags on exactly the five unflagged out-of-range results.
	mustOpen(t, tab, base+"?view=all")
	var rows []flagLine
	mustEval(t, tab, flagsJS+`("[data-testid=result-row]", "[data-testid=name]")`, &rows)
	var computed []string
	for _, r := range rows {
		if r.Computed {
			computed = append(computed, r.Name+" "+r.Flag)
		}
	}
	slices.Sort(computed)
	if want := []string{"Creatinine H", "Glucose H", "Hemoglobin L", "LDL Cholesterol (calc) H", "Potassium H"}; !slices.Equal(computed, want) {
		t.Errorf("computed flags in all results: %q, want %q", computed, want)
	}
	var notes []string
	mustEval(t, tab, `[...document.querySelectorAll("[data-testid=result-row] [data-testid=note]")].map(n => n.textContent)`, &notes)
	if !slices.Contains(notes, "Note: SPECIMEN SLIGHTLY HEMOLYZED. INTERPRET WITH CAUTION.") || !slices.Contains(notes, "Note: PATIENT WAS NOT FASTING") {
		t.Errorf("notes in all results: %q", notes)
	}

	// The drill-down of glucose: the note in full, specimen, lab, times, codes.
	mustOpen(t, tab, base+"/a/c501-2-1538")
	for sel, want := range map[string]string{
		`[data-testid=analyte] [data-testid=note]`:           "Note: PATIENT WAS NOT FASTING",
		`[data-testid=analyte-specimen]`:                     "Blood",
		`[data-testid=analyte-performer]`:                    "Riverside Core Laboratory",
		`[data-testid=analyte-codes]`:                        "Epic component 1538, LOINC 2345-7",
		`[data-testid=analyte] [data-testid=issued]`:         "Resulted",
		`[data-testid=analyte] [data-testid=flag-hint]`:      "outside 70–99",
		`[data-testid=analyte] [data-testid=result-details]`: "Specimen: Blood",
	} {
		if err := tab.WaitText(frame, sel, want, 5*time.Second); err != nil {
			t.Error(err)
		}
	}
	var pointTitle string
	mustEval(t, tab, `[...document.querySelectorAll("[data-testid=chart-point] title")].at(-1).textContent`, &pointTitle)
	if !strings.HasSuffix(pointTitle, "128 mg/dL (High, outside 70–99)") {
		t.Errorf("newest chart point %q", pointTitle)
	}
	settledShot(t, tab, "drilldown-note.png", "[data-testid=analyte] [data-testid=note]")

	// The flowsheet at 1280 px: the computed flag in its cell.
	mustOpen(t, tab, base+"?view=flowsheet")
	var k string
	mustEval(t, tab, `document.querySelector("[data-testid=flow-row][data-key='c501-2-1520'] td").innerText`, &k)
	if !strings.Contains(k, "5.6") || !strings.Contains(k, "High") || !strings.Contains(k, "outside 3.5–5.1") {
		t.Errorf("potassium's newest flowsheet cell %q", k)
	}
	settledShot(t, tab, "flowsheet.png", "")

	// At 360 px only the grid scrolls sideways, the test column stays in
	// view, and the grid can be reached by keyboard.
	if err := tab.SetViewport(360, 800); err != nil {
		t.Fatal(err)
	}
	mustOpen(t, tab, base+"?view=flowsheet")
	var fit struct {
		Page, View     float64
		Grid, GridView float64
		Top            float64
		HeadBefore     float64
		HeadAfter      float64
		Focusable      bool
		Label          string
	}
	mustEval(t, tab, `(async () => {
		const grid = document.querySelector("[data-testid=flowsheet-scroll]");
		const head = () => document.querySelector("[data-testid=flow-row] th").getBoundingClientRect().left - grid.getBoundingClientRect().left;
		const before = head();
		grid.scrollLeft = 400;
		await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
		const after = head();
		grid.focus();
		return {Page: document.documentElement.scrollWidth, View: document.documentElement.clientWidth,
			Grid: grid.scrollWidth, GridView: grid.clientWidth, Top: window.top === window ? 0 : 1,
			HeadBefore: before, HeadAfter: after, Focusable: document.activeElement === grid,
			Label: document.getElementById(grid.getAttribute("aria-labelledby")).textContent};
	})()`, &fit)
	if fit.Page > fit.View {
		t.Errorf("the flowsheet page is %v px wide in a %v px frame", fit.Page, fit.View)
	}
	if fit.Grid <= fit.GridView {
		t.Errorf("the grid (%v px in %v px) does not scroll at 360 px", fit.Grid, fit.GridView)
	}
	if fit.HeadAfter != fit.HeadBefore {
		t.Errorf("the test column moved from %v to %v px when the grid scrolled", fit.HeadBefore, fit.HeadAfter)
	}
	if !fit.Focusable || !strings.HasPrefix(fit.Label, "Flowsheet") {
		t.Errorf("grid focusable %v, label %q", fit.Focusable, fit.Label)
	}
	settledShot(t, tab, "flowsheet-360.png", "")
	var top struct{ Page, View float64 }
	if err := tab.Eval("", `({Page: document.documentElement.scrollWidth, View: document.documentElement.clientWidth})`, &top); err != nil || top.Page > top.View {
		t.Errorf("the EHR page is %v px wide in %v px (%v)", top.Page, top.View, err)
	}

	// axe on the new views, in a 360 px sidebar and at 1280 px.
	for _, width := range []int{360, 1280} {
		if err := tab.SetViewport(width, 900); err != nil {
			t.Fatal(err)
		}
		for _, view := range []struct{ name, path string }{
			{"summary", ""}, {"all results", "?view=all"}, {"flowsheet", "?view=flowsheet"},
			{"flowsheet, older columns", "?view=flowsheet&col=2"}, {"drill-down with a note", "/a/c501-2-1538"},
		} {
			t.Run(fmt.Sprintf("axe %s at %d px", view.name, width), func(t *testing.T) {
				mustOpen(t, tab, base+view.path)
				for _, v := range mustAxe(t, tab, axeSrc) {
					t.Errorf("axe %s (%s): %s", v.ID, v.Impact, strings.Join(v.Nodes, "\n\t"))
				}
			})
		}
	}
	if after := env.CountSimRequests("/fhir/R4/"); after != fhirBefore {
		t.Errorf("the views made %d FHIR requests, want 0", after-fhirBefore)
	}
}
