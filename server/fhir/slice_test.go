package fhir

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"smartlabs/server/panics"
)

// sliceNow is the clock of the sliced-search tests.
var sliceNow = time.Date(2026, 12, 2, 15, 0, 0, 0, time.UTC)

// fakeResult is one Observation of the window-aware fake EHR.
type fakeResult struct {
	id      string
	updated time.Time
	// effective is effectiveDateTime ("" for none), unless period is set.
	effective              string
	period                 bool
	periodStart, periodEnd string
	subject                string
}

func (r fakeResult) json() string {
	subj := r.subject
	if subj == "" {
		subj = "Patient/" + testPatient
	}
	eff := ""
	switch {
	case r.period:
		eff = fmt.Sprintf(`,"effectivePeriod":{"start":%q,"end":%q}`, r.periodStart, r.periodEnd)
	case r.effective != "":
		eff = fmt.Sprintf(`,"effectiveDateTime":%q`, r.effective)
	}
	return fmt.Sprintf(`{"resourceType":"Observation","id":%q,"meta":{"lastUpdated":%q},"status":"final",`+
		`"code":{"text":"Test"},"subject":{"reference":%q}%s,"valueQuantity":{"value":1,"unit":"g"}}`,
		r.id, r.updated.UTC().Format(time.RFC3339Nano), subj, eff)
}

// span is the time the fake reads r's effective[x] as: [lo, hi).
func (r fakeResult) span() (lo, hi time.Time, dated bool) {
	parse := func(s string) (time.Time, time.Time) {
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			return t, t.Add(time.Nanosecond)
		}
		t, _ := time.Parse(time.DateOnly, s)
		return t, t.AddDate(0, 0, 1)
	}
	switch {
	case r.period:
		lo, _ = parse(r.periodStart)
		_, hi = parse(r.periodEnd)
		return lo, hi, true
	case r.effective != "":
		lo, hi = parse(r.effective)
		return lo, hi, true
	}
	return time.Time{}, time.Time{}, false
}

// Modes of the fake's slicing parameters.
const (
	modeStrict  = "strict"  // ge and lt as written
	modeLenient = "lenient" // lt also matches the boundary itself, as FHIR's precision rules allow
	modeIgnore  = "ignore"  // parameters ignored: every search returns everything
)

// windowEHR is a fake EHR whose Observation search applies _lastUpdated,
// date and date:missing, pages through opaque cursors and serves a
// CapabilityStatement.
type windowEHR struct {
	*fakeEHR
	results  []fakeResult // newest first
	mode     string
	metadata string
	// fail, when set, answers a first-page search whose query contains it with a 500.
	fail string
	// expireOnce, when set, answers the first next link of a search whose
	// query contains it with Epic's paging-session-expired outcome.
	expireOnce string

	mu      sync.Mutex
	cursors map[string][]fakeResult
	expired bool
}

func newWindowEHR(t *testing.T, results []fakeResult, mode, params string) *windowEHR {
	t.Helper()
	e := &windowEHR{results: results, mode: mode, cursors: map[string][]fakeResult{},
		metadata: capabilityJSON(params, ``, ``)}
	e.fakeEHR = newFakeEHR(t, e.serve)
	return e
}

func (e *windowEHR) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == basePath+"/metadata" {
		writeJSON(w, 200, e.metadata)
		return
	}
	q := r.URL.Query()
	size, _ := strconv.Atoi(q.Get("_count"))
	if c := q.Get("cursor"); c != "" {
		e.mu.Lock()
		list, ok := e.cursors[c]
		expire := e.expireOnce != "" && !e.expired && strings.Contains(c, e.expireOnce)
		if expire {
			e.expired = true
		}
		e.mu.Unlock()
		if !ok || expire {
			writeJSON(w, 400, outcomeJSON("error", codePagingExpired))
			return
		}
		n, _ := strconv.Atoi(q.Get("n"))
		size, _ = strconv.Atoi(q.Get("size"))
		e.page(w, c, list, n, size)
		return
	}
	if e.fail != "" && strings.Contains(r.URL.RawQuery, e.fail) {
		writeJSON(w, 500, outcomeJSON("error", "x"))
		return
	}
	var list []fakeResult
	for _, res := range e.results {
		if e.mode == modeIgnore || e.matches(res, q) {
			list = append(list, res)
		}
	}
	e.mu.Lock()
	key := strconv.Itoa(len(e.cursors)) + "-" + r.URL.RawQuery
	e.cursors[key] = list
	e.mu.Unlock()
	e.page(w, key, list, 0, size)
}

// matches applies the slicing parameters of q to r.
func (e *windowEHR) matches(r fakeResult, q map[string][]string) bool {
	cmpBound := func(v string, lo, hi time.Time) bool {
		b, err := time.Parse(time.RFC3339, v[2:])
		if err != nil {
			panic(v)
		}
		switch v[:2] {
		case "ge":
			return hi.After(b)
		case "lt":
			return lo.Before(b) || e.mode == modeLenient && lo.Equal(b)
		}
		panic(v)
	}
	for _, v := range q["_lastUpdated"] {
		if !cmpBound(v, r.updated, r.updated.Add(time.Nanosecond)) {
			return false
		}
	}
	lo, hi, dated := r.span()
	for _, v := range q["date"] {
		if !dated || !cmpBound(v, lo, hi) {
			return false
		}
	}
	if m := q["date:missing"]; len(m) > 0 && (m[0] == "true") == dated {
		return false
	}
	return true
}

// page answers page n (0-based) of list, with a next link to the following.
func (e *windowEHR) page(w http.ResponseWriter, key string, list []fakeResult, n, size int) {
	start, end := min(n*size, len(list)), min((n+1)*size, len(list))
	var entries []string
	for _, r := range list[start:end] {
		entries = append(entries, entry(r.json(), "match"))
	}
	if len(list) == 0 {
		entries = append(entries, entry(outcomeJSON("information", "4101"), "outcome"))
	}
	next := ""
	if end < len(list) {
		next = e.srv.URL + basePath + "/Observation?" + urlValues("cursor", key, "n", strconv.Itoa(n+1), "size", strconv.Itoa(size))
	}
	writeJSON(w, 200, bundleJSON(next, entries...))
}

func urlValues(kv ...string) string {
	var b strings.Builder
	for i := 0; i+1 < len(kv); i += 2 {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(kv[i] + "=" + strings.NewReplacer("%", "%25", "&", "%26", "+", "%2B", "=", "%3D", " ", "%20").Replace(kv[i+1]))
	}
	return b.String()
}

// searches counts the Observation searches the fake received.
func (e *windowEHR) searches() int {
	n := 0
	for _, u := range e.requests() {
		if strings.Contains(u, "/Observation") {
			n++
		}
	}
	return n
}

// slicingClient is a client of e that slices with parallel windows at once.
func (e *windowEHR) slicingClient(parallel int) *Client {
	c := e.client()
	c.PageSize = 10
	c.MaxParallel = parallel
	c.Now = func() time.Time { return sliceNow }
	return c
}

// everyHours makes n results updated and collected step apart, newest first,
// the newest two days before sliceNow and off any midnight.
func everyHours(n int, step time.Duration) []fakeResult {
	var out []fakeResult
	top := sliceNow.Add(-48*time.Hour - 13*time.Minute)
	for i := range n {
		at := top.Add(-step * time.Duration(i))
		out = append(out, fakeResult{id: fmt.Sprintf("r%03d", i), updated: at.Add(time.Hour), effective: at.Format(time.RFC3339)})
	}
	return out
}

// replay applies the reports of one Labs call as a view does: a First or
// Restarted report voids what came before.
type replay struct {
	mu      sync.Mutex
	ids     []string
	reports []Progress
}

func (rp *replay) onPage(p Progress) {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	if p.First || p.Restarted {
		rp.ids = nil
	}
	rp.ids = append(rp.ids, ids(p.Page)...)
	rp.reports = append(rp.reports, p)
}

// mustSameIDs checks that got holds each of want's ids exactly once.
func mustSameIDs(t *testing.T, what string, want []fakeResult, got []string) {
	t.Helper()
	var w []string
	for _, r := range want {
		w = append(w, r.id)
	}
	g := slices.Clone(got)
	slices.Sort(w)
	slices.Sort(g)
	if diff := cmp.Diff(w, g); diff != "" {
		t.Errorf("%s: ids (-want +got):\n%s", what, diff)
	}
}

const (
	paramsLastUpdated = `,{"name":"_lastUpdated","type":"date"}`
	paramsDate        = `,{"name":"date","type":"date"},{"name":"date:missing"}`
)

// TestSlicedMergeAndDedup: a sliced search gathers every result once, the
// ones that match two windows (a period across a boundary, a date without
// time) too; it reports each result once, the first page first; and it
// sends at most one request per window more than page after page would.
func TestSlicedMergeAndDedup(t *testing.T) {
	results := everyHours(95, 11*time.Hour)
	// Results in two windows: a period spanning months, a bare date, undated ones.
	results = append(results,
		fakeResult{id: "period", updated: sliceNow.Add(-24 * time.Hour), period: true,
			periodStart: sliceNow.AddDate(0, -3, 0).Format(time.RFC3339), periodEnd: sliceNow.AddDate(0, 0, -3).Format(time.RFC3339)},
		fakeResult{id: "dateonly", updated: sliceNow.Add(-30 * 24 * time.Hour), effective: sliceNow.AddDate(0, 0, -30).Format(time.DateOnly)},
		fakeResult{id: "undated-1", updated: sliceNow.Add(-time.Hour)},
		fakeResult{id: "undated-2", updated: sliceNow.Add(-2 * time.Hour)},
	)
	for _, tt := range []struct{ param, caps string }{
		{ParamLastUpdated, paramsLastUpdated},
		{ParamDate, paramsDate},
	} {
		t.Run(tt.param, func(t *testing.T) {
			e := newWindowEHR(t, results, modeStrict, tt.caps)
			c := e.slicingClient(3)
			var rp replay
			c.OnPage = rp.onPage
			res := c.Labs(context.Background(), testPatient)
			if res.Err != nil || res.Incomplete || res.FellBack || res.SlicedBy != tt.param {
				t.Fatalf("Err %v, Incomplete %v, FellBack %v, SlicedBy %q", res.Err, res.Incomplete, res.FellBack, res.SlicedBy)
			}
			mustSameIDs(t, "result", results, ids(res.Observations))
			mustSameIDs(t, "reports", results, rp.ids)
			if first := rp.reports[0]; !first.First || first.Window != nil || len(first.Page) != 10 {
				t.Errorf("first report: First %v, Window %v, %d results", first.First, first.Window, len(first.Page))
			}
			for i, p := range rp.reports[1:] {
				if p.First || p.Restarted || p.Window == nil {
					t.Errorf("report %d: First %v, Restarted %v, Window %v", i+1, p.First, p.Restarted, p.Window)
				}
			}
			if len(res.Outcomes) != 0 {
				t.Errorf("outcomes %v: an empty window's note leaked into the result", res.Outcomes)
			}
			sequential := (len(results) + 9) / 10
			if got, limit := e.searches(), sequential+res.Windows+1; got > limit || res.Windows < 2 {
				t.Errorf("%d searches for %d windows, want at most %d (sequential %d + one per window + the first page)",
					got, res.Windows, limit, sequential)
			}
		})
	}
}

// TestSlicedBoundaryResultOnce: a result exactly on a window boundary is
// fetched by the newer window only, or by both when the EHR reads lt as
// matching the boundary itself; either way it is kept and reported once.
func TestSlicedBoundaryResultOnce(t *testing.T) {
	results := everyHours(60, 23*time.Hour)
	var firstTimes []entryTimes
	for _, r := range results[:10] {
		firstTimes = append(firstTimes, entryTimes{lastUpdated: r.updated.Format(time.RFC3339)})
	}
	ws := layoutWindows(ParamLastUpdated, firstTimes, sliceNow, 3)
	for i, b := range []time.Time{ws[0].From, ws[1].From, ws[4].From} {
		results = append(results, fakeResult{id: fmt.Sprintf("boundary-%d", i), updated: b, effective: b.Format(time.RFC3339)})
	}
	// Newest first, as the EHR sorts, so the first page stays the same.
	slices.SortStableFunc(results, func(a, b fakeResult) int { return b.updated.Compare(a.updated) })
	for _, mode := range []string{modeStrict, modeLenient} {
		t.Run(mode, func(t *testing.T) {
			e := newWindowEHR(t, results, mode, paramsLastUpdated)
			c := e.slicingClient(3)
			var rp replay
			c.OnPage = rp.onPage
			res := c.Labs(context.Background(), testPatient)
			if res.Err != nil || res.FellBack || res.SlicedBy != ParamLastUpdated {
				t.Fatalf("Err %v, FellBack %v, SlicedBy %q", res.Err, res.FellBack, res.SlicedBy)
			}
			mustSameIDs(t, "result", results, ids(res.Observations))
			mustSameIDs(t, "reports", results, rp.ids)
			// The layout the test put results on is the one the client used.
			var lenient int
			for _, u := range e.requests() {
				if strings.Contains(u, "_lastUpdated=ge"+ws[1].From.Format("2006-01-02")) {
					lenient++
				}
			}
			if lenient == 0 {
				t.Errorf("no window started at %v: %v", ws[1].From, e.requests())
			}
		})
	}
}

// TestSlicedIgnoredParameterFallsBack: an EHR that lists _lastUpdated but
// ignores it returns results outside their windows; the client gives up
// slicing, fetches page after page, and reports it as a restart: the view
// ends with every result once.
func TestSlicedIgnoredParameterFallsBack(t *testing.T) {
	results := everyHours(73, 17*time.Hour)
	e := newWindowEHR(t, results, modeIgnore, paramsLastUpdated)
	c := e.slicingClient(4)
	var rp replay
	c.OnPage = rp.onPage
	res := c.Labs(context.Background(), testPatient)
	if res.Err != nil || res.Incomplete || !res.FellBack {
		t.Fatalf("Err %v, Incomplete %v, FellBack %v", res.Err, res.Incomplete, res.FellBack)
	}
	mustSameIDs(t, "result", results, ids(res.Observations))
	mustSameIDs(t, "reports", results, rp.ids)
	restarts := 0
	for _, p := range rp.reports {
		if p.Restarted {
			restarts++
		}
	}
	if restarts != 1 {
		t.Errorf("%d restarts reported, want 1", restarts)
	}
	// The windows started before the fault was seen cost at most two pages each.
	sequential := (len(results) + 9) / 10
	if got, limit := e.searches(), 1+2*res.Windows+sequential; got > limit {
		t.Errorf("%d searches, want at most %d", got, limit)
	}
}

// TestSlicingOff: no slicing parameter listed, date without date:missing, or
// MaxParallel 1: the search runs page after page, with exactly its pages
// (and, when slicing is on, one CapabilityStatement read).
func TestSlicingOff(t *testing.T) {
	results := everyHours(42, 5*time.Hour)
	for _, tt := range []struct {
		name     string
		caps     string
		parallel int
		metadata int
	}{
		{"no parameter listed", ``, 4, 1},
		{"date without missing", `,{"name":"date","type":"date"}`, 4, 1},
		{"max_parallel 1", paramsLastUpdated, 1, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newWindowEHR(t, results, modeStrict, tt.caps)
			res := e.slicingClient(tt.parallel).Labs(context.Background(), testPatient)
			if res.Err != nil || res.SlicedBy != "" || res.Windows != 0 {
				t.Fatalf("Err %v, SlicedBy %q, Windows %d", res.Err, res.SlicedBy, res.Windows)
			}
			mustSameIDs(t, "result", results, ids(res.Observations))
			metadata := len(e.requests()) - e.searches()
			if e.searches() != 5 || metadata != tt.metadata {
				t.Errorf("%d searches and %d metadata reads, want 5 and %d", e.searches(), metadata, tt.metadata)
			}
		})
	}
	t.Run("one page", func(t *testing.T) {
		e := newWindowEHR(t, results[:7], modeStrict, paramsLastUpdated)
		res := e.slicingClient(4).Labs(context.Background(), testPatient)
		if res.Err != nil || res.SlicedBy != "" || e.searches() != 1 || len(res.Observations) != 7 {
			t.Errorf("Err %v, SlicedBy %q, %d searches, %d results", res.Err, res.SlicedBy, e.searches(), len(res.Observations))
		}
	})
}

// TestSlicedFaults: a window that fails ends the search incomplete with what
// arrived; another patient's data in any window voids everything; an
// expired paging session restarts its window alone, with nothing twice.
func TestSlicedFaults(t *testing.T) {
	results := everyHours(80, 13*time.Hour)
	t.Run("a window fails", func(t *testing.T) {
		e := newWindowEHR(t, results, modeStrict, paramsLastUpdated)
		c := e.slicingClient(2)
		c.MaxAttempts = 1
		var firstTimes []entryTimes
		for _, r := range results[:10] {
			firstTimes = append(firstTimes, entryTimes{lastUpdated: r.updated.Format(time.RFC3339)})
		}
		ws := layoutWindows(ParamLastUpdated, firstTimes, sliceNow, 2)
		e.fail = "_lastUpdated=ge" + ws[1].From.Format("2006-01-02")
		res := c.Labs(context.Background(), testPatient)
		if !res.Incomplete || KindOf(res.Err) != KindUpstream {
			t.Fatalf("Incomplete %v, Err %v; want incomplete, upstream", res.Incomplete, res.Err)
		}
		if n := len(res.Observations); n < 10 || n >= len(results) {
			t.Errorf("%d results kept, want what arrived (10..%d)", n, len(results)-1)
		}
	})
	t.Run("another patient", func(t *testing.T) {
		bad := slices.Clone(results)
		bad[55].subject = "Patient/someoneElse"
		e := newWindowEHR(t, bad, modeStrict, paramsLastUpdated)
		res := e.slicingClient(3).Labs(context.Background(), testPatient)
		if KindOf(res.Err) != KindWrongPatient || len(res.Observations) != 0 || !res.Incomplete {
			t.Errorf("Err %v, %d results, Incomplete %v; want wrong patient, none", res.Err, len(res.Observations), res.Incomplete)
		}
	})
	t.Run("paging session expires in a window", func(t *testing.T) {
		e := newWindowEHR(t, results, modeStrict, paramsLastUpdated)
		e.expireOnce = "_lastUpdated=lt"
		var rp replay
		c := e.slicingClient(3)
		c.OnPage = rp.onPage
		res := c.Labs(context.Background(), testPatient)
		if res.Err != nil || res.Incomplete || !e.expired {
			t.Fatalf("Err %v, Incomplete %v, expired %v", res.Err, res.Incomplete, e.expired)
		}
		mustSameIDs(t, "result", results, ids(res.Observations))
		mustSameIDs(t, "reports", results, rp.ids)
	})
}

// TestSlicedCollapsesAfterEmptyWindow: once a dated window comes back empty,
// the windows not yet started become one, so a short record costs few
// requests; an empty undated window says nothing about the dated ones.
func TestSlicedCollapsesAfterEmptyWindow(t *testing.T) {
	results := everyHours(40, 12*time.Hour) // 20 days
	for _, tt := range []struct{ param, caps string }{
		{ParamLastUpdated, paramsLastUpdated},
		{ParamDate, paramsDate},
	} {
		t.Run(tt.param, func(t *testing.T) {
			e := newWindowEHR(t, results, modeStrict, tt.caps)
			res := e.slicingClient(2).Labs(context.Background(), testPatient)
			if res.Err != nil || res.SlicedBy != tt.param {
				t.Fatalf("Err %v, SlicedBy %q", res.Err, res.SlicedBy)
			}
			mustSameIDs(t, "result", results, ids(res.Observations))
			// The record spans four windows (4.5, 4.5, 9 and 9 days); the
			// fifth is empty, and the rest, up to maxWindows, become one.
			if res.Windows < 5 || res.Windows > 8 {
				t.Errorf("%d windows started, want 5 to 8", res.Windows)
			}
		})
	}
}

// TestSlicerEmptied: an empty dated window merges the windows not yet
// started, keeping their union; an empty undated window changes nothing.
func TestSlicerEmptied(t *testing.T) {
	b := []time.Time{sliceNow.AddDate(0, 0, -10), sliceNow.AddDate(0, 0, -20), sliceNow.AddDate(0, 0, -40)}
	queue := []Window{{Undated: true}, {From: b[0]}, {From: b[1], To: b[0]}, {From: b[2], To: b[1]}, {To: b[2]}}
	s := &slicer{queue: slices.Clone(queue)}
	s.emptied(Window{Undated: true})
	if diff := cmp.Diff(queue, s.queue); diff != "" {
		t.Errorf("an empty undated window changed the queue (-want +got):\n%s", diff)
	}
	s.next()
	s.next()
	s.emptied(Window{From: b[0]})
	if diff := cmp.Diff([]Window{{To: b[0]}}, s.queue); diff != "" {
		t.Errorf("after an empty dated window (-want +got):\n%s", diff)
	}
	s.emptied(Window{From: b[1], To: b[0]})
	if diff := cmp.Diff([]Window{{To: b[0]}}, s.queue); diff != "" {
		t.Errorf("a single window left was changed (-want +got):\n%s", diff)
	}
}

// TestSlicedWindowPanicSurfaces: a panic while fetching a window does not
// end the process from the window's goroutine: the search's own goroutine
// panics with it, where the fetch's recovery (labscache) handles it.
func TestSlicedWindowPanicSurfaces(t *testing.T) {
	e := newWindowEHR(t, everyHours(40, 12*time.Hour), modeStrict, paramsLastUpdated)
	c := e.slicingClient(3)
	base, err := c.base()
	if err != nil {
		t.Fatal(err)
	}
	fetch := c.retrying(c.gated(c.fetchPage(base, testPatient)))
	lc := &labsCall{c: c, base: base, patientID: testPatient, total: -1, param: ParamLastUpdated,
		fetch: func(ctx context.Context, u *url.URL) (*page, *wireOperationOutcome, error) {
			if strings.Contains(u.RawQuery, "_lastUpdated=lt") {
				var m map[string]int
				m["window"]++ // a runtime error in a window's goroutine
			}
			return fetch(ctx, u)
		}}
	lc.first = lc.searchURL(nil)
	res, _, probe := lc.searchOnce(context.Background(), false, func(context.Context, *page) bool { return true })
	if probe == nil {
		t.Fatal("the first page was not handed to the sliced search")
	}
	defer func() {
		var pe *panics.Error
		if r := recover(); r == nil || !errors.As(r.(error), &pe) {
			t.Errorf("recovered %v, want a *panics.Error", r)
		}
	}()
	lc.sliced(context.Background(), res, probe)
	t.Error("the window's panic did not surface")
}
