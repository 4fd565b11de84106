package e2e_test

import (
	"fmt"
	"io"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"smartlabs/server/e2e"
	"smartlabs/server/servertest"
)

// edgeExpect is what the simulator's edge-case patient must show, test by
// test: its values as sent, newest first; how many its chart places and how
// many it leaves off; whether the chart shades a reference band.
var edgeExpect = []struct {
	name               string
	values             []string
	plotted, unplotted int
	band               bool
}{
	{"Edge: one rounding error apart", []string{"0.30000000000000004", "0.3", "0.30000000000000004", "0.3"}, 4, 0, true},
	{"Edge: largest numbers", []string{"1.7976931348623157e308", "-1.7976931348623157e308", "-1e308", "1e308"}, 4, 0, true},
	{"Edge: smallest numbers", []string{"5e-324", "1e-323", "2.2250738585072014e-308", "0"}, 4, 0, true},
	// 1e400, -1e400 and 1e-400 are beyond float range: shown as sent, never drawn; so are the range limits.
	{"Edge: beyond float range", []string{"1e400", "5.1", "-1e400", "1e-400", "4.2"}, 2, 3, false},
	{"Edge: all equal", []string{"7.0", "7", "7", "7"}, 4, 0, true},
	// A range whose low is above its high is shown as sent, not shaded.
	{"Edge: range low above high", []string{"4.3", "4.4", "4.1"}, 3, 0, false},
	{"Edge: years 0001 and 9999", []string{"5.0", "4.9", "4.4", "4.2", "4.1"}, 5, 0, true},
	{"Edge: smallest numbers one apart", []string{"1e-323", "5e-324"}, 2, 0, false},
}

// pageProblems lists what must never be on a page: NaN or Inf in its text,
// its charts' text alternatives or hover titles, and SVG coordinates that are
// not finite numbers inside their chart.
const pageProblems = `(() => {
	const bad = [];
	const nonsense = /\bNaN\b|\bInf(inity)?\b/;
	if (nonsense.test(document.body.innerText)) bad.push("the page text says NaN or Inf");
	for (const svg of document.querySelectorAll("svg")) {
		const [, , w, h] = svg.getAttribute("viewBox").split(" ").map(Number);
		const label = (svg.getAttribute("aria-label") ?? "") + svg.textContent;
		if (nonsense.test(label)) bad.push("chart text: " + label.slice(0, 200));
		const ok = (v, lim) => v !== "" && Number.isFinite(Number(v)) && Number(v) >= 0 && Number(v) <= lim;
		for (const el of svg.querySelectorAll("*")) {
			for (const a of el.attributes) {
				if (["x", "cx", "x1", "x2", "width"].includes(a.name) && !ok(a.value, w)) bad.push(el.tagName + " " + a.name + "=" + a.value);
				if (["y", "cy", "y1", "y2", "height"].includes(a.name) && !ok(a.value, h)) bad.push(el.tagName + " " + a.name + "=" + a.value);
				if (a.name === "points") for (const p of a.value.trim().split(/\s+/)) {
					const [x, y] = p.split(",");
					if (!ok(x, w) || !ok(y, h)) bad.push(el.tagName + " point " + p);
				}
			}
		}
	}
	return bad.slice(0, 20);
})()`

// navTiming is the Navigation Timing of the frame's document, in ms: until
// the response's first byte and until the load event ended.
type navTiming struct {
	Server float64 `json:"server"`
	Total  float64 `json:"total"`
	Bytes  float64 `json:"bytes"`
}

// openView loads u in the frame as a full page, checks it for pageProblems,
// and returns its timing.
func openView(t *testing.T, tab *e2e.Tab, u string) navTiming {
	t.Helper()
	mustEval(t, tab, `location.href = `+jsQuote(u), nil)
	var got navTiming
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		var href string
		err := tab.Eval(frame, `performance.getEntriesByType("navigation")[0]?.loadEventEnd > 0 ? location.href : ""`, &href)
		if err == nil && href == u {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never finished loading", u)
		}
	}
	mustEval(t, tab, `(() => { const e = performance.getEntriesByType("navigation")[0];
		return {server: e.responseStart - e.requestStart, total: e.loadEventEnd - e.startTime, bytes: e.decodedBodySize}; })()`, &got)
	var problems []string
	mustEval(t, tab, pageProblems, &problems)
	for _, p := range problems {
		t.Errorf("%s: %s", u, p)
	}
	return got
}

// TestEdgeCasePatientInFrame opens the simulator's edge-case patient in the
// cross-site frame: the summary, every test's drill-down and all results show
// every value as sent (1e400 included), never NaN or Inf, with every chart
// coordinate inside its chart, each view in well under a second (the bound
// checked is a generous 10 s), and the server's heap flat over 200 more
// renders of those views.
func TestEdgeCasePatientInFrame(t *testing.T) {
	env := servertest.New(t, servertest.Options{})
	b := e2e.NewBrowser(t)
	tab := b.NewTab(t)
	if err := tab.SetViewport(1280, 900); err != nil {
		t.Fatal(err)
	}
	p := env.Patient("Edge")
	if p.ResultCount == 0 {
		t.Fatal("the simulator has no edge-case patient")
	}
	openChart(t, env, tab, "Edge")
	waitIdle(t, tab)
	frameURL, err := tab.FrameURL(frame)
	if err != nil || !strings.Contains(frameURL, "/l/") {
		t.Fatalf("frame at %q, %v", frameURL, err)
	}
	base := frameURL[:strings.Index(frameURL, "/l/")+len("/l/")+22]
	timings := map[string]navTiming{}

	// Summary: one line per test, the critical ones pinned, latest values as sent.
	timings["summary"] = openView(t, tab, base)
	type line struct {
		Name, Kind, Latest, Delta, Href string
		Spark                           int
	}
	var lines []line
	mustEval(t, tab, `[...document.querySelectorAll("[data-testid=summary-line]")].map(l => ({
		Name: l.querySelector("[data-testid=analyte-link]").textContent,
		Kind: l.closest("[data-testid=summary-group]").dataset.kind,
		Latest: l.querySelector("[data-testid=latest] [data-testid=value]")?.textContent.trim() ?? "",
		Delta: l.querySelector("[data-testid=delta]")?.textContent.replace(/\s+/g, " ").trim() ?? "",
		Href: l.querySelector("[data-testid=analyte-link]").getAttribute("href"),
		Spark: l.querySelectorAll("[data-testid=spark-point]").length}))`, &lines)
	byName := map[string]line{}
	for _, l := range lines {
		byName[l.Name] = l
	}
	if len(lines) != len(edgeExpect) {
		t.Errorf("summary has %d lines, want %d: %+v", len(lines), len(edgeExpect), lines)
	}
	for _, want := range edgeExpect {
		l, ok := byName[want.name]
		if !ok {
			t.Errorf("summary lacks %q", want.name)
			continue
		}
		if !strings.HasPrefix(l.Latest, want.values[0]) || l.Spark != min(want.plotted, 20) {
			t.Errorf("summary line %q: latest %q, %d sparkline points; want %q, %d", want.name, l.Latest, l.Spark, want.values[0], want.plotted)
		}
	}
	for name, want := range map[string]string{
		"Edge: one rounding error apart": "↑ change up +5.55112e-17",
		"Edge: all equal":                "→ change unchanged 0.0",
		"Edge: years 0001 and 9999":      "↑ change up +0.1",
		"Edge: beyond float range":       "",
		"Edge: largest numbers":          "",
	} {
		if got := byName[name].Delta; got != want {
			t.Errorf("change of %q = %q, want %q", name, got, want)
		}
	}
	for _, name := range []string{"Edge: largest numbers", "Edge: beyond float range"} {
		if byName[name].Kind != "critical" {
			t.Errorf("%q is not pinned with the critical results", name)
		}
	}

	// Each drill-down: every value as sent, newest first; the chart places the
	// numbers it can and says how many it leaves off.
	for _, want := range edgeExpect {
		l := byName[want.name]
		if l.Href == "" {
			continue
		}
		timings[want.name] = openView(t, tab, env.AppURL+l.Href)
		var got struct {
			Name      string   `json:"name"`
			Values    []string `json:"values"`
			Points    int      `json:"points"`
			Band      int      `json:"band"`
			Unplotted string   `json:"unplotted"`
			XTicks    []string `json:"xticks"`
		}
		mustEval(t, tab, `({name: document.querySelector("[data-testid=analyte-name]").textContent,
			values: [...document.querySelectorAll("[data-testid=analyte] [data-testid=result-row] [data-testid=result] [data-testid=value]")].map(v => v.textContent.trim()),
			points: document.querySelectorAll("[data-testid=chart-point]").length,
			band: document.querySelectorAll("[data-testid=chart-band]").length,
			unplotted: document.querySelector("[data-testid=chart-unplotted]")?.textContent ?? "",
			xticks: [...document.querySelectorAll("[data-testid=x-tick]")].map(x => x.textContent)})`, &got)
		if got.Name != want.name || len(got.Values) != len(want.values) {
			t.Errorf("drill-down of %q: %q with values %q", want.name, got.Name, got.Values)
			continue
		}
		for i, v := range want.values {
			if !strings.HasPrefix(got.Values[i], v) {
				t.Errorf("%q: result %d shows %q, want %q as sent", want.name, i, got.Values[i], v)
			}
		}
		if got.Points != want.plotted || (got.Band == 1) != want.band {
			t.Errorf("%q: chart has %d points and %d bands; want %d points, band %v", want.name, got.Points, got.Band, want.plotted, want.band)
		}
		if wantNote := fmt.Sprintf("%d results are not on the chart", want.unplotted); (want.unplotted > 0) != strings.HasPrefix(got.Unplotted, wantNote) {
			t.Errorf("%q: note %q, want %d left off", want.name, got.Unplotted, want.unplotted)
		}
		if want.name == "Edge: years 0001 and 9999" && (len(got.XTicks) < 2 || got.XTicks[0] != "0001" || got.XTicks[len(got.XTicks)-1] != "9999") {
			t.Errorf("date axis from year 0001 to 9999 reads %q", got.XTicks)
		}
	}

	// All results: every result, every value as sent.
	timings["all results"] = openView(t, tab, base+"?view=all")
	var all []string
	mustEval(t, tab, `[...document.querySelectorAll("[data-testid=result-row] [data-testid=result] [data-testid=value]")].map(v => v.textContent.trim())`, &all)
	if len(all) != p.ResultCount-p.EnteredInError {
		t.Errorf("all results lists %d values, want %d", len(all), p.ResultCount-p.EnteredInError)
	}
	for _, want := range edgeExpect {
		for _, v := range want.values {
			if !slices.ContainsFunc(all, func(s string) bool { return strings.HasPrefix(s, v+" ") || s == v }) {
				t.Errorf("all results never shows %q", v)
			}
		}
	}
	for name, tm := range timings {
		t.Logf("MEASURE %s: first byte %.0f ms, loaded %.0f ms, %.0f bytes", name, tm.Server, tm.Total, tm.Bytes)
		if tm.Total > 10000 {
			t.Errorf("%s took %.0f ms to load", name, tm.Total)
		}
	}

	// The server's heap stays flat over 200 more renders of these views.
	urls := []string{base, base + "?view=all"}
	for _, l := range lines {
		urls = append(urls, env.AppURL+l.Href)
	}
	mustHeapFlat(t, tab, urls, 200)
}

// mustHeapFlat fetches urls round-robin n times with the tab's session
// cookie, outside the browser, and checks that the live heap after a
// collection grows by less than 32 MiB; a view whose render leaked or looped
// on would grow it without end. It logs the heap, and the time and bytes each
// render allocated.
func mustHeapFlat(t *testing.T, tab *e2e.Tab, urls []string, n int) {
	t.Helper()
	cookies, err := tab.Cookies()
	if err != nil {
		t.Fatal(err)
	}
	var cookie string
	for _, c := range cookies {
		if c.Name == "__Host-smartlabs" {
			cookie = c.Name + "=" + c.Value
		}
	}
	hc := &http.Client{Timeout: 10 * time.Second}
	get := func(u string) time.Duration {
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		req.Header.Set("Cookie", cookie)
		start := time.Now()
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if _, err := io.Copy(io.Discard, resp.Body); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d %v", u, resp.StatusCode, err)
		}
		return time.Since(start)
	}
	heap := func() runtime.MemStats {
		runtime.GC()
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m
	}
	for _, u := range urls {
		get(u)
	}
	before := heap()
	var took []time.Duration
	for i := range n {
		took = append(took, get(urls[i%len(urls)]))
	}
	after := heap()
	slices.Sort(took)
	t.Logf("MEASURE server heap %.1f MiB before %d renders, %.1f MiB after; %.0f KiB allocated per render; render median %v, max %v",
		float64(before.HeapAlloc)/(1<<20), n, float64(after.HeapAlloc)/(1<<20),
		float64(after.TotalAlloc-before.TotalAlloc)/float64(n)/1024, took[len(took)/2], took[len(took)-1])
	if after.HeapAlloc > before.HeapAlloc+32<<20 {
		t.Errorf("server heap grew from %d to %d bytes over %d renders", before.HeapAlloc, after.HeapAlloc, n)
	}
}
