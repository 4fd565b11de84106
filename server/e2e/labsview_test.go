package e2e_test

import (
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"smartlabs/server/e2e"
	"smartlabs/server/ehrsim"
	"smartlabs/server/servertest"
)

// waitIdle waits until htmx has no request, swap or settle running in the frame.
func waitIdle(t *testing.T, tab *e2e.Tab) {
	t.Helper()
	for deadline := time.Now().Add(uiWait); time.Now().Before(deadline); time.Sleep(30 * time.Millisecond) {
		var busy bool
		if err := tab.Eval(frame, `document.querySelector(".htmx-request, .htmx-swapping, .htmx-settling, #labs-live") !== null`, &busy); err == nil && !busy {
			return
		}
	}
	t.Fatal("htmx never went idle")
}

// evalJSON runs js in the frame and decodes its value, failing the test on error.
func mustEval(t *testing.T, tab *e2e.Tab, js string, out any) {
	t.Helper()
	if err := tab.Eval(frame, js, out); err != nil {
		t.Fatal(err)
	}
}

// settledSwaps counts the htmx swaps settled in the frame's document since
// the first call on that document; -1 when the frame cannot be read.
func settledSwaps(tab *e2e.Tab) int {
	n := -1
	if err := tab.Eval(frame, `(() => {
		if (window.__e2eSettled === undefined) {
			window.__e2eSettled = 0;
			document.addEventListener("htmx:afterSettle", () => { window.__e2eSettled++; });
		}
		return window.__e2eSettled;
	})()`, &n); err != nil {
		return -1
	}
	return n
}

// mustSwap runs do, which must make htmx swap new content into the frame
// (at once, or after a trigger delay), and waits until that swap has settled
// and htmx is idle: the test waits on the event, never on a guess of how long
// the request takes.
func mustSwap(t *testing.T, tab *e2e.Tab, do func()) {
	t.Helper()
	before := settledSwaps(tab)
	if before < 0 {
		t.Fatal("cannot read the frame")
	}
	do()
	for deadline := time.Now().Add(uiWait); settledSwaps(tab) <= before; time.Sleep(30 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("htmx swapped nothing within %v", uiWait)
		}
	}
	waitIdle(t, tab)
}

// mustClick clicks an element of the frame and waits for the swap it causes.
func mustClick(t *testing.T, tab *e2e.Tab, sel string) {
	t.Helper()
	mustSwap(t, tab, func() {
		if err := tab.Click(frame, sel); err != nil {
			t.Fatal(err)
		}
	})
}

// mustInput runs js, which changes a form control of the frame and fires its
// event, and waits for the swap it causes.
func mustInput(t *testing.T, tab *e2e.Tab, js string) {
	t.Helper()
	mustSwap(t, tab, func() { mustEval(t, tab, js, nil) })
}

// mustLoadNew runs js, which must load a new document into the frame (a
// reload counts), and waits until that document has loaded: a mark left on
// the old document tells them apart, whatever their URLs.
func mustLoadNew(t *testing.T, tab *e2e.Tab, js string) {
	t.Helper()
	mustEval(t, tab, `window.__e2eOld = true`, nil)
	mustEval(t, tab, js, nil)
	for deadline := time.Now().Add(uiWait); ; time.Sleep(50 * time.Millisecond) {
		var loaded bool
		if err := tab.Eval(frame, `window.__e2eOld !== true && document.readyState === "complete"`, &loaded); err == nil && loaded {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the frame never loaded a new document")
		}
	}
}

// point is one sparkline point or one table row: when and what.
type point struct {
	At    string `json:"at"`
	Value string `json:"value"`
}

// TestSummaryDrillDownAndBack walks the summary, checks its sparkline against
// the "All results" table, opens a drill-down, and uses the back and forward
// buttons and a deep link; no step asks the EHR for anything.
func TestSummaryDrillDownAndBack(t *testing.T) {
	env := servertest.New(t, servertest.Options{})
	b := e2e.NewBrowser(t)
	tab := b.NewTab(t)
	if err := tab.SetViewport(1280, 900); err != nil {
		t.Fatal(err)
	}
	openChart(t, env, tab, "Lin")
	waitIdle(t, tab)
	fhirBefore := env.CountSimRequests("/fhir/R4/Observation")

	// Critical analytes are pinned first, and only there.
	var kinds []string
	mustEval(t, tab, `[...document.querySelectorAll("[data-testid=summary-group]")].map(g => g.dataset.kind)`, &kinds)
	var critInGroup, critOutside int
	mustEval(t, tab, `document.querySelectorAll("[data-kind=critical] [data-testid=summary-line][data-critical]").length`, &critInGroup)
	mustEval(t, tab, `document.querySelectorAll("[data-testid=summary-group]:not([data-kind=critical]) [data-testid=summary-line][data-critical]").length`, &critOutside)
	if len(kinds) == 0 || kinds[0] != "critical" || critInGroup == 0 || critOutside != 0 {
		t.Fatalf("groups %v: %d critical lines pinned, %d elsewhere; want critical first", kinds, critInGroup, critOutside)
	}
	shot(t, tab, "summary.png")

	// The sparkline of the first analyte with one shows its newest numeric results.
	var line struct {
		Key    string  `json:"key"`
		Name   string  `json:"name"`
		Points []point `json:"points"`
	}
	mustEval(t, tab, `(() => {
		const l = [...document.querySelectorAll("[data-testid=summary-line]")].find(l => l.querySelector("[data-testid=sparkline]"));
		return {key: l.dataset.key, name: l.querySelector("[data-testid=analyte-link]").textContent,
			points: [...l.querySelectorAll("[data-testid=spark-point]")].map(p => ({at: p.dataset.at, value: p.dataset.value}))};
	})()`, &line)
	if len(line.Points) < 2 {
		t.Fatalf("sparkline of %s has %d points", line.Name, len(line.Points))
	}

	// The "All results" tab lists every result, page after page; those of
	// this analyte, numeric, newest 20, oldest first, are the sparkline's points.
	mustClick(t, tab, `[data-testid="tab-all"]`)
	var want []point
	for {
		var rows []point
		mustEval(t, tab, `[...document.querySelectorAll("[data-testid=result-row]")]
			.filter(r => r.querySelector("[data-testid=name]").textContent === `+jsQuote(line.Name)+`)
			.map(r => ({at: r.querySelector("[data-testid=collected] time")?.getAttribute("datetime") ?? "",
				value: r.querySelector("[data-testid=result] > div > [data-testid=value]")?.textContent ?? ""}))`, &rows)
		for _, r := range rows {
			if r.Value != "" && !strings.ContainsAny(r.Value[:1], "<>") && len(want) < 20 {
				want = append(want, r)
			}
		}
		if n, _ := tab.Count(frame, `[data-testid="list-next"]`); n == 0 || len(want) == 20 {
			break
		}
		mustClick(t, tab, `[data-testid="list-next"]`)
	}
	slices.Reverse(want)
	if !slices.Equal(want, line.Points) {
		t.Errorf("sparkline of %s:\n got %v\nwant %v", line.Name, line.Points, want)
	}

	// Back to the summary, then open the analyte: an HTMX swap with a pushed URL.
	mustClick(t, tab, `[data-testid="tab-summary"]`)
	mustClick(t, tab, `[data-testid="summary-line"][data-key="`+line.Key+`"] [data-testid="analyte-link"]`)
	if err := tab.WaitText(frame, `[data-testid="analyte-name"]`, line.Name, uiWait); err != nil {
		t.Fatal(err)
	}
	href, _ := tab.FrameURL(frame)
	if !strings.Contains(href, "/a/"+line.Key) {
		t.Fatalf("drill-down URL = %q", href)
	}
	var focused string
	mustEval(t, tab, `document.activeElement.dataset.testid ?? ""`, &focused)
	if focused != "analyte-name" {
		t.Errorf("focus after the drill-down is on %q, want its heading", focused)
	}
	var chartPoints, historyRows int
	mustEval(t, tab, `document.querySelectorAll("[data-testid=chart-point]").length`, &chartPoints)
	mustEval(t, tab, `document.querySelectorAll("[data-testid=analyte] [data-testid=result-row]").length`, &historyRows)
	if chartPoints < len(line.Points) || historyRows < chartPoints {
		t.Errorf("drill-down: %d chart points, %d history rows, sparkline %d", chartPoints, historyRows, len(line.Points))
	}
	shot(t, tab, "drilldown.png")

	// The back button returns to the summary; forward (a reload of the deep link) to the drill-down.
	mustEval(t, tab, `history.back()`, nil)
	if err := tab.WaitText(frame, `[data-testid="tab-summary"][aria-current="page"]`, "Summary", uiWait); err != nil {
		t.Fatalf("back: %v", err)
	}
	waitLoaded(t, tab)
	if n, _ := tab.Count(frame, `[data-testid="analyte"]`); n != 0 {
		t.Error("back still shows the drill-down")
	}
	mustEval(t, tab, `history.forward()`, nil)
	if err := tab.WaitText(frame, `[data-testid="analyte-name"]`, line.Name, uiWait); err != nil {
		t.Fatalf("forward to the deep link: %v", err)
	}
	waitLoaded(t, tab)
	if n, _ := tab.Count(frame, `[data-testid="chart-point"]`); n != chartPoints {
		t.Errorf("deep link shows %d chart points, the swap showed %d", n, chartPoints)
	}
	if after := env.CountSimRequests("/fhir/R4/Observation"); after != fhirBefore {
		t.Errorf("summary, tabs, drill-down and history made %d FHIR requests, want 0", after-fhirBefore)
	}
}

// jsQuote quotes s for JavaScript.
func jsQuote(s string) string { return fmt.Sprintf("%q", s) }

// TestFiltersWithoutFHIRRequests: on the 5,000-result patient, every filter
// changes the view, none makes a FHIR request. With SMARTLABS_E2E_MEASURE set
// it also times filter clicks and logs the median and the bytes of the view.
func TestFiltersWithoutFHIRRequests(t *testing.T) {
	env := servertest.New(t, servertest.Options{Switches: ehrsim.Switches{Latency: 3 * time.Millisecond}})
	b := e2e.NewBrowser(t)
	tab := b.NewTab(t)
	if err := tab.SetViewport(1280, 900); err != nil {
		t.Fatal(err)
	}
	p := env.Patient("Large")
	openChartLoading(t, env, tab, "Large")
	waitIdle(t, tab)
	want := p.ResultCount - p.EnteredInError
	count, _ := tab.Text(frame, `[data-testid="result-count"]`)
	if count != fmt.Sprintf("%d,%03d results", want/1000, want%1000) {
		t.Fatalf("final count = %q, want %d results", count, want)
	}
	var reloaded bool
	mustEval(t, tab, `window.__e2eNoReload !== true`, &reloaded)
	if reloaded {
		t.Fatal("the page reloaded while loading")
	}
	before := env.CountSimRequests("/fhir/R4/Observation")

	lines := func() int {
		n, _ := tab.Count(frame, `[data-testid="summary-line"], [data-testid="result-row"]`)
		return n
	}
	shown := func() string {
		s, _ := tab.Text(frame, `[data-testid="count-line"]`)
		return s
	}
	all := lines()
	steps := []struct {
		name string
		do   func()
		ok   func() bool
	}{
		{"1 year", func() { mustClick(t, tab, `label:has([data-testid="range-1y"]) > span`) }, func() bool { return strings.Contains(shown(), "shown") }},
		{"search", func() {
			mustInput(t, tab, `(() => { const s = document.querySelector("[data-testid=search]"); s.value = "gluc"; s.dispatchEvent(new Event("input", {bubbles: true})); })()`)
		}, func() bool { return lines() == 1 }},
		{"all time, no search", func() {
			mustInput(t, tab, `(() => { const s = document.querySelector("[data-testid=search]"); s.value = ""; s.dispatchEvent(new Event("input", {bubbles: true})); })()`)
			mustClick(t, tab, `label:has([data-testid="range-all"]) > span`)
		}, func() bool { return lines() == all }},
		{"abnormal only", func() { mustClick(t, tab, `[data-testid="abnormal-only"]`) }, func() bool { return lines() < all }},
		{"status", func() {
			mustClick(t, tab, `[data-testid="abnormal-only"]`)
			mustInput(t, tab, `(() => { const s = document.querySelector("[data-testid=status-filter]"); s.value = "preliminary"; s.dispatchEvent(new Event("change", {bubbles: true})); })()`)
		}, func() bool { return lines() > 0 && lines() < all }},
		{"sort by name", func() {
			mustInput(t, tab, `(() => { const s = document.querySelector("[data-testid=status-filter]"); s.value = ""; s.dispatchEvent(new Event("change", {bubbles: true})); })()`)
			mustInput(t, tab, `(() => { const s = document.querySelector("[data-testid=sort]"); s.value = "name"; s.dispatchEvent(new Event("change", {bubbles: true})); })()`)
		}, func() bool {
			var names []string
			tab.Eval(frame, `[...document.querySelectorAll("[data-testid=summary-group]:not([data-kind=critical]) [data-testid=analyte-link]")].map(a => a.textContent.toLowerCase())`, &names)
			return len(names) > 1 && sort.StringsAreSorted(names)
		}},
	}
	for _, s := range steps {
		s.do()
		if !s.ok() {
			t.Errorf("%s: the view did not change as expected (count line %q, %d lines)", s.name, shown(), lines())
		}
		href, _ := tab.FrameURL(frame)
		if !strings.Contains(href, "/l/") {
			t.Errorf("%s: frame at %q", s.name, href)
		}
	}
	href, _ := tab.FrameURL(frame)
	if !strings.Contains(href, "sort=name") {
		t.Errorf("filter state is not in the URL: %q", href)
	}
	if after := env.CountSimRequests("/fhir/R4/Observation"); after != before {
		t.Errorf("filters made %d FHIR requests, want 0", after-before)
	}

	if os.Getenv("SMARTLABS_E2E_MEASURE") != "" {
		measureFilterClicks(t, tab)
	}
}

// openChartLoading opens the chart like openChart, but also checks that the
// progress line shows while later pages load, and marks the window so a reload
// would be noticed.
func openChartLoading(t *testing.T, env *servertest.Env, tab *e2e.Tab, name string) {
	t.Helper()
	p := env.Patient(name)
	if err := tab.Navigate(env.SimURL + "/"); err != nil {
		t.Fatal(err)
	}
	if err := tab.Click("", `[data-testid="launch-`+p.ID+`"]`); err != nil {
		t.Fatal(err)
	}
	if err := tab.WaitText(frame, `[data-testid="progress"]`, "Loaded", uiWait); err != nil {
		t.Fatalf("no progress line while loading: %v", err)
	}
	mustEval(t, tab, `window.__e2eNoReload = true`, nil)
	if err := tab.WaitText(frame, `[data-testid="banner-name"]`, p.Name, uiWait); err != nil {
		t.Fatalf("loading never completed: %v", err)
	}
}

// measureFilterClicks clicks between two date presets 24 times and logs the
// median time from the click to the swapped view, and the view's bytes.
func measureFilterClicks(t *testing.T, tab *e2e.Tab) {
	t.Helper()
	var ms []float64
	for i := range 24 {
		sel := `label:has([data-testid="range-1y"]) > span`
		if i%2 == 1 {
			sel = `label:has([data-testid="range-all"]) > span`
		}
		mustEval(t, tab, `(() => {
			window.__e2eSwap = new Promise(r => document.body.addEventListener("htmx:afterSwap", () => r(performance.now()), {once: true}));
			document.addEventListener("click", () => { window.__e2eT0 = performance.now(); }, {once: true, capture: true});
		})()`, nil)
		if err := tab.Click(frame, sel); err != nil {
			t.Fatal(err)
		}
		var d float64
		mustEval(t, tab, `window.__e2eSwap.then(t1 => t1 - window.__e2eT0)`, &d)
		ms = append(ms, d)
		waitIdle(t, tab)
	}
	sort.Float64s(ms)
	var size struct {
		Encoded float64 `json:"encoded"`
		Decoded float64 `json:"decoded"`
	}
	mustEval(t, tab, `(() => { const e = performance.getEntriesByType("resource").filter(e => e.initiatorType === "xmlhttprequest").at(-1);
		return {encoded: e.encodedBodySize, decoded: e.decodedBodySize}; })()`, &size)
	t.Logf("MEASURE filter click to swapped view, 5,000 results, %d clicks: median %.1f ms (min %.1f, max %.1f); view %.0f bytes (%.0f gzipped)",
		len(ms), (ms[len(ms)/2-1]+ms[len(ms)/2])/2, ms[0], ms[len(ms)-1], size.Decoded, size.Encoded)
}

// TestAccessibility runs axe-core (WCAG 2.1 A and AA rules) on the summary,
// the full list and a drill-down, in a 360 px sidebar and at 1280 px.
func TestAccessibility(t *testing.T) {
	src := mustAxeSource(t)
	env := servertest.New(t, servertest.Options{})
	b := e2e.NewBrowser(t)
	tab := b.NewTab(t)
	openChart(t, env, tab, "Okafor")
	waitIdle(t, tab)
	var key string
	mustEval(t, tab, `document.querySelector("[data-testid=summary-line]:has([data-testid=sparkline])").dataset.key`, &key)
	base, _ := tab.FrameURL(frame)
	base = base[:strings.Index(base, "/l/")+len("/l/")+22]

	for _, width := range []int{360, 1280} {
		if err := tab.SetViewport(width, 900); err != nil {
			t.Fatal(err)
		}
		for _, view := range []struct{ name, path string }{
			{"summary", ""}, {"all results", "?view=all"}, {"drill-down", "/a/" + key},
		} {
			t.Run(fmt.Sprintf("%s at %d px", view.name, width), func(t *testing.T) {
				mustLoadNew(t, tab, `location.href = `+jsQuote(base+view.path))
				waitIdle(t, tab)
				violations := mustAxe(t, tab, src)
				for _, v := range violations {
					t.Errorf("axe %s (%s): %s", v.ID, v.Impact, strings.Join(v.Nodes, "\n\t"))
				}
				if width == 360 && view.path == "" {
					shot(t, tab, "summary-360.png")
				}
			})
		}
	}
}
