// Package e2e_test is the end-to-end benchmark (make bench-e2e): smartlabs in
// real headless Chromium inside the simulator's cross-site frame, against the
// sequential limit (a plain Go client) and a browser-only fhirclient SPA.
// It runs only when BenchEnv is set, so the normal test command skips it.
package e2e_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"smartlabs/server/bench/simclient"
	"smartlabs/server/config"
	"smartlabs/server/e2e"
	"smartlabs/server/ehrsim"
	"smartlabs/server/servertest"
)

// BenchEnv turns the benchmark on; BenchOutEnv names the markdown file it writes.
const (
	BenchEnv    = "SMARTLABS_BENCH_E2E"
	BenchOutEnv = "SMARTLABS_BENCH_OUT"
	benchRunEnv = "SMARTLABS_BENCH_RUNS"
)

const (
	pageSize = 100
	patient  = "Large"
	frame    = `[data-testid="app-frame"]`
	spaID    = "bench-spa"
	// inFlightCap is the simulator's cap of concurrent requests per token:
	// smartlabs' per-launch bound (max_parallel, 4 by default). A request
	// beyond it gets 429, and counts against the target of none.
	inFlightCap = 4
)

// latencies are the simulator's delays per FHIR and token request measured.
var latencies = []time.Duration{15 * time.Millisecond, 150 * time.Millisecond}

// figures are one run's measurements; durations are from t0.
type figures struct {
	firstRow, all time.Duration
	bytes         int // compressed bytes of every response to the browser
	jsBytes       int // compressed JavaScript
	beforeFirst   int // compressed bytes needed before the first row
	// ehrPage is how long the EHR's chart page took, from the click, to
	// open the launch URL in its frame; not part of firstRow and all.
	ehrPage time.Duration
	// firstPage is when the EHR finished answering smartlabs' first
	// Observation search page (on the simulator's clock, from t0).
	firstPage time.Duration
	// afterPage is the first row's time after firstPage (its own run's).
	afterPage time.Duration
	// head, styles and view are when smartlabs' page began to arrive (the
	// flushed head), when its last stylesheet had loaded, and when the page
	// ended (the view after the first results), from the launch URL opening.
	head, styles, view time.Duration
	note               string
}

func TestBenchE2E(t *testing.T) {
	if os.Getenv(BenchEnv) == "" {
		t.Skip("end-to-end benchmark: run with make bench-e2e (" + BenchEnv + "=1)")
	}
	runs := 3
	if n, err := strconv.Atoi(os.Getenv(benchRunEnv)); err == nil && n > 0 {
		runs = n
	}
	b := e2e.NewBrowser(t)
	var out bytes.Buffer
	for _, latency := range latencies {
		benchAt(t, &out, b, latency, runs)
	}
	t.Log("\n" + out.String())
	if path := os.Getenv(BenchOutEnv); path != "" {
		if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// benchAt measures, side by side at one latency: smartlabs, the sequential
// limit, and the fhirclient SPA; each run of each in turn, the median of runs.
func benchAt(t *testing.T, out *bytes.Buffer, b *e2e.Browser, latency time.Duration, runs int) {
	switches := ehrsim.Switches{Latency: latency, MaxInFlightPerToken: inFlightCap, RetryAfter: time.Second}
	mutate := func(c *config.Config) { c.FHIR.PageSize = pageSize }
	env := servertest.New(t, servertest.Options{Switches: switches, Mutate: mutate})
	p := env.Patient(patient)
	want := p.ResultCount - p.EnteredInError
	spa := startSPA(t, latency)

	var app, seq, spaTop []figures
	for range runs {
		app = append(app, runApp(t, env, b, p, want))
		seq = append(seq, runSequential(t, env, p, want))
		spaTop = append(spaTop, runSPATop(t, spa, b, p, want))
	}
	framed, framedErr := runSPAFramed(t, spa, b, p, want)

	a, s, r := median(app), median(seq), median(spaTop)
	fmt.Fprintf(out, "### End-to-end: %q, %d results, page size %d, %v latency per FHIR/token request (median of %d runs, %d CPUs)\n\n",
		p.Name, want, pageSize, latency, runs, runtime.NumCPU())
	fmt.Fprintf(out, "| | first result row | all results on screen | bytes to browser (gz) | JS (gz) | bytes before first row |\n|---|---:|---:|---:|---:|---:|\n")
	row := func(name string, f figures, browser bool) {
		if !browser {
			fmt.Fprintf(out, "| %s | %s | %s | — | — | — |\n", name, ms(f.firstRow), ms(f.all))
			return
		}
		fmt.Fprintf(out, "| %s | %s | %s | %s | %s | %s |\n", name, ms(f.firstRow), ms(f.all), kb(f.bytes), kb(f.jsBytes), kb(f.beforeFirst))
	}
	row("smartlabs in the cross-site frame", a, true)
	row("sequential limit (Go client: launch, Patient, every page)", s, false)
	row("fhirclient SPA, top-level", r, true)
	if framedErr != "" {
		fmt.Fprintf(out, "| fhirclient SPA in the cross-site frame | fails: %s | — | — | — | — |\n", framedErr)
	} else {
		row("fhirclient SPA in the cross-site frame, from the click in the chart (did launch: this Chromium partitions third-party storage)", framed, true)
	}
	out.WriteString("\n")

	check := func(name string, got, limit float64, unit string) {
		ok := "met"
		if got > limit {
			ok = fmt.Sprintf("**missed** by %.0f%%", (got/limit-1)*100)
		}
		fmt.Fprintf(out, "| %s | %.2f%s | ≤ %.2f%s | %s |\n", name, got, unit, limit, unit, ok)
	}
	allLimit := 1.0
	if latency >= 150*time.Millisecond {
		allLimit = 0.5
	}
	fmt.Fprintf(out, "| target | measured | limit | |\n|---|---:|---:|---|\n")
	check("all results ÷ sequential limit", ratio(a.all, s.all), allLimit, "×")
	check("first row − sequential first page", float64(a.firstRow-s.firstRow)/float64(time.Millisecond), 100, " ms")
	check("first row − smartlabs' own first page answered", float64(a.afterPage)/float64(time.Millisecond), 100, " ms")
	check("all results ÷ SPA", ratio(a.all, r.all), 0.5, "×")
	check("bytes ÷ SPA bytes", float64(a.bytes)/float64(max(r.bytes, 1)), 0.25, "×")
	check("FHIR requests beyond the EHR's cap (429s and over-cap, all runs)", float64(overCap(env)), 0, "")
	fmt.Fprintf(out, "\nTimes run from the moment the launch URL is opened: smartlabs' from the start of its frame's navigation to /launch "+
		"(the EHR's chart page took %s from the click to open it, not counted), the SPA's from its tab's navigation to its launch page, "+
		"the sequential limit's from its first request.", ms(a.ehrPage))
	fmt.Fprintf(out, " smartlabs' page, medians from the launch URL opening: its head (styles, script) began to arrive at %s, "+
		"the EHR answered its first Observation page at %s (the EHR's clock lined up with the browser's), the page with its first view ended at %s, "+
		"its stylesheets (which hold back the first paint) had loaded at %s, and the first row was painted at %s.",
		ms(a.head), ms(a.firstPage), ms(a.view), ms(a.styles), ms(a.firstRow))
	fmt.Fprintf(out, " Sequential limit's first page (launch + Patient + page 1): %s. The EHR answers 429 beyond %d requests in flight per token; "+
		"smartlabs runs with max_parallel 4. Bytes are response bodies as the browser received them "+
		"(gzip -5 of each body sent gzip-encoded, raw size otherwise; headers excluded).\n\n", ms(s.firstRow), inFlightCap)
}

// overCap counts the FHIR requests the simulator refused with 429 or got
// beyond its cap per token.
func overCap(env *servertest.Env) int {
	n := 0
	for _, r := range env.Sim.Requests() {
		if strings.HasPrefix(r.Path, "/fhir/") && (r.Status == http.StatusTooManyRequests || r.TokenInFlight > inFlightCap) {
			n++
		}
	}
	return n
}

// runApp clicks Launch on the simulator's launchpad (t0) and times the app in
// the chart's cross-site frame until its first row and its full count.
func runApp(t *testing.T, env *servertest.Env, b *e2e.Browser, p ehrsim.PatientInfo, want int) figures {
	t.Helper()
	tab := newBenchTab(t, b)
	if err := tab.Navigate(env.SimURL + "/"); err != nil {
		t.Fatal(err)
	}
	t0, simT0 := time.Now(), env.Clock.Now()
	if err := tab.Click("", `[data-testid="launch-`+p.ID+`"]`); err != nil {
		t.Fatal(err)
	}
	f := timeRows(t, tab, frame, t0, want)
	f.firstPage = firstPageDone(t, env, simT0)
	f.bytes, f.jsBytes, f.beforeFirst = payload(tab.Responses(), func(u string) bool { return strings.HasPrefix(u, env.AppURL) })
	// From the moment the EHR opens our launch URL in its frame, as the
	// sequential limit and the top-level SPA are timed: the time origin of
	// the frame's document is the start of the navigation that began at
	// /launch (its redirects through the EHR's authorize included). What the
	// EHR's chart page took before that is its own, and is reported apart.
	var origin float64
	if err := tab.Eval(frame, "performance.timeOrigin", &origin); err != nil {
		t.Fatal(err)
	}
	f.ehrPage = time.UnixMicro(int64(origin * 1000)).Sub(t0)
	if os.Getenv("DIAG") != "" {
		var diag any
		_ = tab.Eval(frame, `(() => { const n = performance.getEntriesByType("navigation")[0]; return {nav: n.toJSON(), res: performance.getEntriesByType("resource").map(r => ({name: r.name.slice(-40), start: r.startTime, reqStart: r.requestStart, respStart: r.responseStart, end: r.responseEnd})), first: window.__benchMarks.first - performance.timeOrigin, paint: performance.getEntriesByType("paint").map(p => [p.name, p.startTime])}; })()`, &diag)
		t.Logf("DIAG firstPage=%v ehrPage=%v %+v", f.firstPage-f.ehrPage, f.ehrPage, diag)
	}
	if f.ehrPage < 0 || f.ehrPage > f.firstRow {
		t.Fatalf("the frame's navigation began %v after the click, its first row %v", f.ehrPage, f.firstRow)
	}
	f.firstRow -= f.ehrPage
	f.all -= f.ehrPage
	f.firstPage -= f.ehrPage
	f.afterPage = f.firstRow - f.firstPage
	var nav struct{ Head, Styles, View float64 }
	if err := tab.Eval(frame, navJS, &nav); err != nil {
		t.Fatal(err)
	}
	f.head, f.styles, f.view = msDur(nav.Head), msDur(nav.Styles), msDur(nav.View)
	return f
}

// navJS reads, from the page's own timing entries (ms since its navigation
// began), when its response began and ended and when its last stylesheet
// (which holds back the first paint) had loaded.
const navJS = `(() => {
  const n = performance.getEntriesByType("navigation")[0];
  const css = performance.getEntriesByType("resource").filter(r => r.initiatorType === "link" && /\.css(\?|$)/.test(r.name));
  return {head: n.responseStart, view: n.responseEnd, styles: Math.max(0, ...css.map(r => r.responseEnd))};
})()`

func msDur(ms float64) time.Duration { return time.Duration(ms * float64(time.Millisecond)) }

// firstPageDone is when the simulator finished writing the first answered
// Observation search page since simT0 (its clock), from simT0. The
// simulator's clock runs with real time, so it lines up with the browser's
// marks to within the clock readings' spacing.
func firstPageDone(t *testing.T, env *servertest.Env, simT0 time.Time) time.Duration {
	t.Helper()
	var first time.Time
	for _, r := range env.Sim.Requests() {
		if r.Time.Before(simT0) || r.Status != http.StatusOK || !strings.HasSuffix(r.Path, "/Observation") {
			continue
		}
		if first.IsZero() || r.Done.Before(first) {
			first = r.Done
		}
	}
	if first.IsZero() {
		t.Fatal("the simulator logged no Observation search page for the launch")
	}
	return first.Sub(simT0)
}

// runSequential does the same launch as the app with a plain Go client, then
// Patient and every page one after another.
func runSequential(t *testing.T, env *servertest.Env, p ehrsim.PatientInfo, want int) figures {
	t.Helper()
	launch, err := env.Sim.NewLaunch(p.ID, servertest.ClientID)
	if err != nil {
		t.Fatal(err)
	}
	c := &simclient.Client{
		ISS: env.Sim.ISS(), AuthorizeURL: env.Sim.AuthorizeURL(), TokenURL: env.Sim.TokenURL(),
		ClientID: servertest.ClientID, Secret: servertest.ClientSecret, RedirectURI: env.Cfg.RedirectURI(),
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	t0 := time.Now()
	tok, err := c.Launch(ctx, launch)
	if err != nil {
		t.Fatal(err)
	}
	launched := time.Since(t0)
	got, err := c.Fetch(ctx, tok, pageSize)
	if err != nil {
		t.Fatal(err)
	}
	all := time.Since(t0)
	if got.Results < want {
		t.Fatalf("sequential client got %d results, want %d", got.Results, want)
	}
	return figures{firstRow: launched + got.FirstPage, all: all}
}

// spaEnv is the reference SPA's own simulator and origin.
type spaEnv struct {
	sim            *ehrsim.Sim
	simURL, appURL string
}

// startSPA serves the built SPA (server/bench/spa) from its own loopback
// origin (localhost, cross-site to the simulator at 127.0.0.1), and a second
// simulator with the same deterministic data, the same latency and the SPA
// registered as a public client. Both compress with gzip, as Epic and any
// static host do, so the SPA's bytes are not inflated.
func startSPA(t *testing.T, latency time.Duration) *spaEnv {
	t.Helper()
	dir, err := filepath.Abs("../spa")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "dist", "app.js")); err != nil {
		t.Fatalf("the SPA is not built: run npm ci && npm run build in server/bench/spa (%v)", err)
	}
	appLn, simLn := servertest.Listen(t), servertest.Listen(t)
	e := &spaEnv{appURL: "http://localhost:" + servertest.Port(appLn), simURL: "http://127.0.0.1:" + servertest.Port(simLn)}
	sim, err := ehrsim.New(ehrsim.Options{
		BaseURL: e.simURL, AppLaunchURL: e.appURL + "/launch.html",
		Clients:  []ehrsim.Client{{ID: spaID, Public: true, RedirectURIs: []string{e.appURL + "/index.html"}}},
		Switches: ehrsim.Switches{Latency: latency},
	})
	if err != nil {
		t.Fatal(err)
	}
	e.sim = sim
	files := http.NewServeMux()
	for _, name := range []string{"/launch.html", "/index.html", "/dist/app.js"} {
		files.HandleFunc("GET "+name, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Cache-Control", "no-store")
			// ServeContent, not ServeFile: ServeFile redirects /index.html to /.
			f, err := os.Open(filepath.Join(dir, filepath.FromSlash(name)))
			if err != nil {
				http.NotFound(w, r)
				return
			}
			defer f.Close()
			http.ServeContent(w, r, name, time.Time{}, f)
		})
	}
	servertest.Serve(t, appLn, gzipped(files))
	servertest.Serve(t, simLn, gzipped(sim))
	return e
}

// runSPATop navigates a tab to the SPA's launch URL (t0), as if the EHR opened it top-level.
func runSPATop(t *testing.T, e *spaEnv, b *e2e.Browser, p ehrsim.PatientInfo, want int) figures {
	t.Helper()
	launch, err := e.sim.NewLaunch(p.ID, spaID)
	if err != nil {
		t.Fatal(err)
	}
	tab := newBenchTab(t, b)
	t0 := time.Now()
	go func() { _ = tab.Navigate(e.appURL + "/launch.html?iss=" + e.sim.ISS() + "&launch=" + launch) }()
	f := timeRows(t, tab, "", t0, want)
	f.bytes, f.jsBytes, f.beforeFirst = payload(tab.Responses(), func(u string) bool {
		return strings.HasPrefix(u, e.appURL) || strings.HasPrefix(u, e.simURL+"/fhir/") || strings.HasPrefix(u, e.simURL+"/oauth2/")
	})
	return f
}

// runSPAFramed opens the SPA in the simulator's chart page (t0), inside the
// cross-site frame, and returns its figures, or the error the SPA reports.
func runSPAFramed(t *testing.T, e *spaEnv, b *e2e.Browser, p ehrsim.PatientInfo, want int) (figures, string) {
	t.Helper()
	tab := newBenchTab(t, b)
	t0 := time.Now()
	go func() { _ = tab.Navigate(e.simURL + "/hyperspace?patient=" + p.ID + "&client=" + spaID) }()
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if msg, err := tab.Text(frame, `[data-testid="spa-error"]`); err == nil && strings.TrimSpace(msg) != "" {
			return figures{}, strings.TrimSpace(msg)
		}
		if n, err := tab.Count(frame, `[data-testid="result-row"]`); err == nil && n > 0 {
			f := timeRows(t, tab, frame, t0, want)
			f.bytes, f.jsBytes, f.beforeFirst = payload(tab.Responses(), func(u string) bool {
				return strings.HasPrefix(u, e.appURL) || strings.HasPrefix(u, e.simURL+"/fhir/") || strings.HasPrefix(u, e.simURL+"/oauth2/")
			})
			return f, ""
		}
	}
	return figures{}, "no result and no error within 15 s"
}

// firstRowSel finds a shown result: a row of the results table, or a line of
// the summary view (grouped by test), whichever the default view shows.
const firstRowSel = `[data-testid="result-row"], [data-testid="summary-line"]`

var digits = regexp.MustCompile(`[0-9][0-9,]*`)

// marksJS runs at the start of every document of a benchmark tab. It
// timestamps, on the browser's clock (ms since the epoch), when a result
// row first shows and every text the result count shows: each at the
// animation frame that follows the change, when the browser paints it.
// The times come from the page itself, so the benchmark need not poll the
// page's main thread often, which would slow the page it measures.
const marksJS = `(() => {
  const m = window.__benchMarks = {first: 0, counts: []};
  let pending = false, last = null;
  const check = () => {
    pending = false;
    const t = performance.timeOrigin + performance.now();
    if (!m.first && document.querySelector(` + "`" + firstRowSel + "`" + `)) m.first = t;
    const c = document.querySelector('[data-testid="result-count"]');
    const text = c ? c.textContent : "";
    if (text !== last) { last = text; m.counts.push([text, t]); }
  };
  new MutationObserver(() => {
    if (!pending) { pending = true; requestAnimationFrame(check); }
  }).observe(document, {subtree: true, childList: true, characterData: true});
})()`

// newBenchTab opens a tab whose documents all run marksJS.
func newBenchTab(t *testing.T, b *e2e.Browser) *e2e.Tab {
	t.Helper()
	tab := b.NewTab(t)
	if err := tab.AddInitScript(marksJS); err != nil {
		t.Fatal(err)
	}
	return tab
}

// timeRows waits until the frame shows a result row and its result count
// reads want, then returns when each happened, from t0, as the page's own
// marks (marksJS) say.
func timeRows(t *testing.T, tab *e2e.Tab, frameSel string, t0 time.Time, want int) figures {
	t.Helper()
	var f figures
	deadline := t0.Add(60 * time.Second)
	for time.Now().Before(deadline) {
		var done bool
		if err := tab.Eval(frameSel, `(() => { const m = window.__benchMarks; return !!m && m.first > 0 && m.counts.length > 0; })()`, &done); err == nil && done {
			if txt, err := tab.Text(frameSel, `[data-testid="result-count"]`); err == nil && countIs(txt, want) {
				var m struct {
					First  float64  `json:"first"`
					Counts [][2]any `json:"counts"`
				}
				if err := tab.Eval(frameSel, `window.__benchMarks`, &m); err != nil {
					t.Fatal(err)
				}
				f.firstRow = epochMs(m.First).Sub(t0)
				for _, c := range m.Counts {
					text, _ := c[0].(string)
					at, _ := c[1].(float64)
					if countIs(text, want) {
						f.all = epochMs(at).Sub(t0)
						break
					}
				}
				if f.all == 0 {
					t.Fatalf("the page shows %d results but its marks never saw it: %v", want, m.Counts)
				}
				return f
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	html, _ := tab.HTML(frameSel)
	dump := filepath.Join(t.TempDir(), "last.html")
	if d := os.Getenv("SMARTLABS_BENCH_DUMP"); d != "" {
		dump = d
	}
	_ = os.WriteFile(dump, []byte(html), 0o644)
	where, _ := tab.FrameURL(frameSel)
	if u, err := url.Parse(where); err == nil {
		where = u.Scheme + "://" + u.Host + u.Path // the query may hold a code or launch token
	}
	var paths []string
	for _, r := range tab.Responses() {
		if u, err := url.Parse(r.URL); err == nil {
			paths = append(paths, fmt.Sprintf("%d %s%s", r.Status, u.Host, u.Path))
		}
	}
	t.Fatalf("results never complete at %s; the page is in %s; responses:\n%s", where, dump, strings.Join(paths, "\n"))
	return f
}

// countIs reports whether a result count's text names want results.
func countIs(text string, want int) bool {
	for _, m := range digits.FindAllString(text, -1) {
		if n, _ := strconv.Atoi(strings.ReplaceAll(m, ",", "")); n == want {
			return true
		}
	}
	return false
}

// epochMs is a time the browser gave in ms since the epoch.
func epochMs(ms float64) time.Time { return time.UnixMicro(int64(ms * 1000)) }

// payload sums the compressed size of the bodies of responses whose URL
// matches: all of them, the JavaScript, and those needed before the first
// result row: every script and stylesheet, and the other responses up to the
// one that brings the first row (an HTML body up to that row's end, or a whole
// search Bundle for the SPA).
func payload(rs []e2e.Response, match func(string) bool) (all, js, beforeFirst int) {
	seenRow := false
	seen := map[string]bool{}
	for _, r := range rs {
		// A URL loaded twice (the SPA's bundle on its launch and index pages)
		// counts once, as a cache would serve it the second time.
		if !match(r.URL) || r.Body == "" || seen[r.URL] {
			continue
		}
		seen[r.URL] = true
		gz := strings.Contains(strings.ToLower(r.Headers.Get("Content-Encoding")), "gzip")
		size := func(s string) int {
			if gz {
				return gzSize(s)
			}
			return len(s)
		}
		n := size(r.Body)
		all += n
		switch {
		case r.Type == "Script":
			js += n
			beforeFirst += n
		case r.Type == "Stylesheet":
			beforeFirst += n
		case seenRow:
		case firstRowAt(r.Body) >= 0:
			i := firstRowAt(r.Body)
			end := strings.Index(r.Body[i:], "</tr>")
			if end < 0 {
				end = len(r.Body) - i
			}
			beforeFirst += size(r.Body[:i+end])
			seenRow = true
		case strings.Contains(r.Body, `"resourceType":"Bundle"`) && strings.Contains(r.Body, `"Observation"`):
			beforeFirst += n
			seenRow = true
		default:
			beforeFirst += n
		}
	}
	return all, js, beforeFirst
}

// firstRowAt is the offset of the first shown result in an HTML body, or -1.
func firstRowAt(body string) int {
	at := -1
	for _, m := range []string{`data-testid="result-row"`, `data-testid="summary-line"`} {
		if i := strings.Index(body, m); i >= 0 && (at < 0 || i < at) {
			at = i
		}
	}
	return at
}

func gzSize(s string) int {
	var b bytes.Buffer
	w, _ := gzip.NewWriterLevel(&b, 5)
	_, _ = io.WriteString(w, s)
	_ = w.Close()
	return b.Len()
}

// gzipped compresses every answer for a client that accepts gzip.
func gzipped(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
			h.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Content-Encoding", "gzip")
		w.Header().Add("Vary", "Accept-Encoding")
		gw, _ := gzip.NewWriterLevel(w, 5)
		defer gw.Close()
		h.ServeHTTP(gzipWriter{ResponseWriter: w, w: gw}, r)
	})
}

type gzipWriter struct {
	http.ResponseWriter
	w *gzip.Writer
}

func (g gzipWriter) Write(p []byte) (int, error) { return g.w.Write(p) }

func (g gzipWriter) WriteHeader(code int) {
	g.ResponseWriter.Header().Del("Content-Length")
	g.ResponseWriter.WriteHeader(code)
}

func median(fs []figures) figures {
	if len(fs) == 0 {
		return figures{}
	}
	pick := func(get func(figures) int64) int64 {
		v := make([]int64, len(fs))
		for i, f := range fs {
			v[i] = get(f)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	return figures{
		firstRow:    time.Duration(pick(func(f figures) int64 { return int64(f.firstRow) })),
		all:         time.Duration(pick(func(f figures) int64 { return int64(f.all) })),
		bytes:       int(pick(func(f figures) int64 { return int64(f.bytes) })),
		jsBytes:     int(pick(func(f figures) int64 { return int64(f.jsBytes) })),
		beforeFirst: int(pick(func(f figures) int64 { return int64(f.beforeFirst) })),
		ehrPage:     time.Duration(pick(func(f figures) int64 { return int64(f.ehrPage) })),
		firstPage:   time.Duration(pick(func(f figures) int64 { return int64(f.firstPage) })),
		afterPage:   time.Duration(pick(func(f figures) int64 { return int64(f.afterPage) })),
		head:        time.Duration(pick(func(f figures) int64 { return int64(f.head) })),
		styles:      time.Duration(pick(func(f figures) int64 { return int64(f.styles) })),
		view:        time.Duration(pick(func(f figures) int64 { return int64(f.view) })),
	}
}

func ratio(a, b time.Duration) float64 { return float64(a) / float64(max(b, 1)) }

func ms(d time.Duration) string { return fmt.Sprintf("%d ms", d.Milliseconds()) }

func kb(n int) string { return fmt.Sprintf("%.1f KB", float64(n)/1024) }

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
