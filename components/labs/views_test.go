package labs_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/google/go-cmp/cmp"

	"smartlabs/components/internal/htmlcheck"
	"smartlabs/components/labs"
	"smartlabs/components/layout"
)

func fp(f float64) *float64 { return &f }

// series is a chart of values collected a day apart.
func series(values ...string) labs.Chart {
	c := labs.Chart{Low: fp(3.5), High: fp(5.1), Unit: "mmol/L"}
	at := time.Date(2024, 3, 1, 8, 0, 0, 0, time.UTC)
	for i, v := range values {
		f, _ := strconv.ParseFloat(v, 64)
		p := labs.Point{At: at.AddDate(0, 0, i), Label: at.AddDate(0, 0, i).Format("2006-01-02 15:04"), Value: f, Text: v}
		if f > 5.1 {
			p.Flag = labs.FlagHigh
		}
		c.Points = append(c.Points, p)
	}
	return c
}

// summaryProps is a summary view with one analyte line whose latest result is r.
func summaryProps(r labs.Row) labs.Props {
	p := baseProps(r)
	p.Mode, p.BasePath, p.Shown, p.TimeZone = labs.ModeSummary, "/l/L1", 1, "America/Chicago"
	p.Statuses = []string{"final", "corrected"}
	line := labs.AnalyteLine{Key: "2823-3", URL: "/l/L1/a/2823-3", Name: r.Name, Latest: r, Count: 1}
	if r.Value != "" && r.Unit != "" {
		prev := labs.Row{ID: "prev", Name: r.Name, Value: "4.1", Unit: r.Unit, Collected: "2024-02-01 08:00", CollectedISO: "2024-02-01T08:00:00-06:00"}
		line.Previous, line.Delta, line.Dir, line.Count = &prev, "+1.3", labs.DirUp, 2
		line.Spark = series("4.1", r.Value)
	}
	if line.Critical() {
		p.Summary = &labs.Summary{Pinned: []labs.AnalyteLine{line}}
	} else {
		p.Summary = &labs.Summary{Groups: []labs.Group{{Lines: []labs.AnalyteLine{line}}}}
	}
	return p
}

// TestSummaryGolden compares the summary of each result shape with
// testdata/summary-<shape>.golden.html (-update rewrites them).
func TestSummaryGolden(t *testing.T) {
	for shape, r := range shapes {
		t.Run(shape, func(t *testing.T) {
			got := htmlcheck.MustRender(t, labs.Fragment(summaryProps(r))) + "\n"
			checkGolden(t, "summary-"+shape, got)
			doc := htmlcheck.MustParse(t, got)
			htmlcheck.AssertCSPSafe(t, doc)
			line := doc.Find(`[data-testid="summary-line"]`)
			if line.Length() != 1 {
				t.Fatalf("%d summary lines, want 1", line.Length())
			}
			// The latest value is shown as sent, whatever its shape.
			latest := text(line.Find(`[data-testid="latest"]`))
			for _, want := range []string{r.Value, r.Unit, r.Absent, r.StatusNote} {
				if want != "" && !strings.Contains(latest, want) {
					t.Errorf("latest cell %q lacks %q", latest, want)
				}
			}
		})
	}
}

func TestAnalyteGolden(t *testing.T) {
	p := baseProps()
	p.Mode, p.BasePath = labs.ModeAnalyte, "/l/L1"
	r := shapes["quantity"]
	p.Analyte = &labs.Analyte{Key: "2823-3", Name: "Potassium", Unit: "mmol/L", Range: "3.5–5.1",
		Rows: []labs.Row{r, shapes["corrected"]}, Chart: series("4.1", "6.0", "4.4"), BackURL: "/l/L1?range=30d"}
	got := htmlcheck.MustRender(t, labs.Fragment(p)) + "\n"
	checkGolden(t, "analyte", got)
	doc := htmlcheck.MustParse(t, got)
	htmlcheck.AssertCSPSafe(t, doc)
	if doc.Find(`form[data-testid="filters"]`).Length() != 0 {
		t.Error("the drill-down shows the filters")
	}
	back := doc.Find(`[data-testid="back"]`)
	if back.AttrOr("href", "") != "/l/L1?range=30d" || back.AttrOr("hx-push-url", "") != "true" {
		t.Errorf("back link href %q push %q", back.AttrOr("href", ""), back.AttrOr("hx-push-url", ""))
	}
	svg := doc.Find(`[data-testid="chart"] svg`)
	if svg.AttrOr("role", "") != "img" || !strings.Contains(text(svg.Find("title#chart-title")), "lowest 4.1") {
		t.Errorf("chart lacks its text alternative: %q", text(svg.Find("title")))
	}
	var titles []string
	svg.Find(`[data-testid="chart-point"] title`).Each(func(_ int, s *goquery.Selection) { titles = append(titles, text(s)) })
	want := []string{"2024-03-01 08:00: 4.1 mmol/L", "2024-03-02 08:00: 6.0 mmol/L (High)", "2024-03-03 08:00: 4.4 mmol/L"}
	if diff := cmp.Diff(want, titles); diff != "" {
		t.Errorf("point titles (-want +got):\n%s", diff)
	}
	if n := doc.Find(`[data-testid="x-tick"]`).Length(); n < 2 {
		t.Errorf("%d date axis labels, want at least 2", n)
	}
	if n := doc.Find(`[data-testid="result-row"]`).Length(); n != 2 {
		t.Errorf("history table has %d rows, want 2", n)
	}
}

func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden.html")
	if *update {
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
}

// TestSparklinePointsAreTheData: one point per value, in order, with the value
// as sent; higher values are drawn higher, the band spans the range, and
// abnormal points are marked by more than colour (larger radius).
func TestSparklinePointsAreTheData(t *testing.T) {
	values := []string{"4.1", "5.40", "3.9", "6.0", "4.4"}
	r := shapes["quantity"]
	p := summaryProps(r)
	p.Summary.Groups = []labs.Group{{Lines: []labs.AnalyteLine{{Key: "k", URL: "/l/L1/a/k", Name: "K", Latest: labs.Row{Name: "K", Value: "4.4"}, Spark: series(values...)}}}}
	p.Summary.Pinned = nil
	doc := mustFragmentDoc(t, p)
	svg := doc.Find(`[data-testid="sparkline"]`)
	if svg.Length() != 1 {
		t.Fatalf("%d sparklines", svg.Length())
	}
	if w, h := svg.AttrOr("width", ""), svg.AttrOr("height", ""); w == "" || h == "" {
		t.Error("sparkline has no fixed size: the layout would shift")
	}
	if label := svg.AttrOr("aria-label", ""); !strings.Contains(label, "from 4.1 to 4.4") || !strings.Contains(label, "2 outside") {
		t.Errorf("aria-label = %q", label)
	}
	var got []string
	var ys []float64
	radius := map[bool]string{}
	svg.Find(`[data-testid="spark-point"]`).Each(func(_ int, s *goquery.Selection) {
		got = append(got, s.AttrOr("data-value", ""))
		y, _ := strconv.ParseFloat(s.AttrOr("cy", ""), 64)
		ys = append(ys, y)
		radius[s.AttrOr("data-abnormal", "") == "true"] = s.AttrOr("r", "")
	})
	if diff := cmp.Diff(values, got); diff != "" {
		t.Errorf("points (-want +got):\n%s", diff)
	}
	// SVG y grows downwards: 6.0 (index 3) is highest, 3.9 (index 2) lowest.
	if !(ys[3] < ys[1] && ys[1] < ys[4] && ys[4] < ys[0] && ys[0] < ys[2]) {
		t.Errorf("y order does not follow the values: %v", ys)
	}
	band := svg.Find(`[data-testid="spark-band"]`)
	by, _ := strconv.ParseFloat(band.AttrOr("y", ""), 64)
	bh, _ := strconv.ParseFloat(band.AttrOr("height", ""), 64)
	// The band's top is the high limit 5.1, between the 5.40 and 4.4 points; its
	// bottom is the low limit 3.5, below the lowest point 3.9.
	if !(by > ys[1] && by < ys[4] && by+bh > ys[2]) {
		t.Errorf("band %v..%v misplaced against points %v", by, by+bh, ys)
	}
	// The scale is linear: the same value step gives the same pixel step.
	slope := (ys[3] - ys[2]) / (6.0 - 3.9)
	for i, v := range []float64{4.1, 5.40, 3.9, 6.0, 4.4} {
		if want := ys[2] + (v-3.9)*slope; want-ys[i] > 0.15 || ys[i]-want > 0.15 {
			t.Errorf("point %d at y %v, want %v", i, ys[i], want)
		}
	}
	if radius[true] == radius[false] {
		t.Errorf("abnormal and normal points have the same radius %q", radius[true])
	}
}

// TestLoadingFollowsLive: while pages arrive, the view holds the live
// element that polls for its updates, with a hidden alert that
// offers Retry of the view itself; a complete view has none.
func TestLoadingFollowsLive(t *testing.T) {
	p := summaryProps(shapes["quantity"])
	p.Loading = &labs.Loading{Fetched: 300, Total: 5000}
	p.Filter = labs.Filter{Range: "30d", Query: "k"}
	p.LiveURL = "/l/L1/live?q=k&range=30d&v=tok.3"
	doc := mustFragmentDoc(t, p)
	if got := text(doc.Find(`[data-testid="progress"]`)); got != "Loaded 300 of 5,000…" {
		t.Errorf("progress = %q", got)
	}
	live := doc.Find("#labs-results #labs-live")
	if got := live.AttrOr("hx-get", ""); got != p.LiveURL || live.AttrOr("hx-target", "") != "this" || live.AttrOr("hx-swap", "") != "outerHTML" {
		t.Errorf("live element polls %q into %q (%q), want %q into itself", got, live.AttrOr("hx-target", ""), live.AttrOr("hx-swap", ""), p.LiveURL)
	}
	broken := live.Find(`[data-testid="live-broken"]`)
	if _, hidden := broken.Attr("hidden"); !hidden || broken.AttrOr("role", "") != "alert" || !strings.Contains(broken.Text(), "incomplete") {
		t.Errorf("the broken-stream alert: hidden %v, role %q, text %q", hidden, broken.AttrOr("role", ""), broken.Text())
	}
	retry := broken.Find(`[data-testid="retry"]`)
	if retry.AttrOr("hx-get", "") != "/l/L1?q=k&range=30d" || retry.AttrOr("hx-target", "") != "#labs" {
		t.Errorf("Retry asks for %q into %q, want the view into #labs", retry.AttrOr("hx-get", ""), retry.AttrOr("hx-target", ""))
	}
	p.Loading = nil
	if mustFragmentDoc(t, p).Find("#labs-live").Length() != 0 {
		t.Error("a complete view still follows updates")
	}
	p.Loading = &labs.Loading{Fetched: 50, Total: -1}
	if got := text(mustFragmentDoc(t, p).Find(`[data-testid="progress"]`)); got != "Loaded 50…" {
		t.Errorf("progress without a total = %q", got)
	}
}

func TestFilterControlsShowState(t *testing.T) {
	p := summaryProps(shapes["quantity"])
	p.Mode = labs.ModeList
	p.Filter = labs.Filter{Range: "1y", Query: `"><b>`, Abnormal: true, Status: "corrected", Sort: "name"}
	doc := mustFragmentDoc(t, p)
	form := doc.Find(`form[data-testid="filters"]`)
	if form.AttrOr("hx-get", "") != "/l/L1" || form.AttrOr("hx-target", "") != "#labs-results" || form.AttrOr("hx-push-url", "") != "true" {
		t.Errorf("form attributes: %v", form.Nodes[0].Attr)
	}
	checks := map[string]string{
		`input[name="range"][checked]`:     "1y",
		`input[name="q"]`:                  `"><b>`,
		`input[name="abnormal"][checked]`:  "1",
		`select[name="status"] [selected]`: "corrected",
		`select[name="sort"] [selected]`:   "name",
		`input[name="view"]`:               "all",
	}
	for sel, want := range checks {
		if got := form.Find(sel).AttrOr("value", ""); got != want {
			t.Errorf("%s value = %q, want %q", sel, got, want)
		}
	}
	if form.Find("b").Length() != 0 {
		t.Error("the search text became markup")
	}
	tabs := doc.Find(`[data-testid="view-tabs"] a`)
	if tabs.Length() != 3 || doc.Find(`[data-testid="tab-all"]`).AttrOr("aria-current", "") != "page" {
		t.Errorf("tabs: %d, current %q", tabs.Length(), doc.Find(`[aria-current="page"]`).Text())
	}
	if got := doc.Find(`[data-testid="tab-summary"]`).AttrOr("href", ""); !strings.HasPrefix(got, "/l/L1?") || strings.Contains(got, "view=all") {
		t.Errorf("summary tab href = %q", got)
	}
}

func TestSummaryEscapingAndCSP(t *testing.T) {
	const evil = `<script>alert(1)</script>`
	r := labs.Row{ID: "x", Name: evil, Value: evil, Unit: evil, Range: evil, Collected: evil}
	p := summaryProps(r)
	p.Summary.Groups[0].Name = evil
	p.Summary.Groups[0].Lines[0].Spark = series("1", "2")
	p.Summary.Groups[0].Lines[0].Spark.Points[0].Text = evil
	p.Banner = &labs.Banner{Name: "Jane"}
	html := htmlcheck.MustRender(t, layout.Page(layout.Props{Title: "Labs", CSSPath: "/static/a.css", JSPath: "/static/a.js"}, labs.View(p)))
	doc := htmlcheck.MustParse(t, html)
	if n := doc.Find("script").Length(); n != 1 {
		t.Errorf("%d <script> elements, want only the bundle", n)
	}
	htmlcheck.AssertCSPSafe(t, doc)
	if got := text(doc.Find(`[data-testid="analyte-link"]`)); got != evil {
		t.Errorf("name = %q", got)
	}
}

func TestBannerSlotWhileLoading(t *testing.T) {
	p := summaryProps(shapes["quantity"])
	p.BannerPending = true
	view := htmlcheck.MustParse(t, htmlcheck.MustRender(t, labs.View(p)))
	slot := view.Find("#labs-banner")
	if slot.Length() != 1 || slot.Find(`[data-testid="banner-pending"]`).Length() != 1 {
		t.Fatal("no reserved banner slot while the patient loads")
	}
	p.BannerPending, p.Banner = false, &labs.Banner{Name: "Jane Doe"}
	polled := htmlcheck.MustParse(t, htmlcheck.MustRender(t, labs.PolledResults(p)))
	oob := polled.Find(`#labs-banner[hx-swap-oob="true"]`)
	if oob.Length() != 1 || text(oob.Find(`[data-testid="banner-name"]`)) != "Jane Doe" {
		t.Error("the polled results do not bring the banner to its slot")
	}
	if polled.Find("#labs-results").Length() != 1 {
		t.Error("polled results lack #labs-results")
	}
}

// TestSummaryPanelReport: a panel from a lab report shows the report's
// collection time, status, performing lab and conclusion under its name;
// results in no panel come after it.
func TestSummaryPanelReport(t *testing.T) {
	p := summaryProps(shapes["computed"])
	line := p.Summary.Groups[0].Lines[0]
	other := labs.AnalyteLine{Key: "718-7", URL: "/l/L1/a/718-7", Name: "Hemoglobin", Latest: shapes["string"], Count: 1}
	p.Summary.Groups = []labs.Group{
		{Name: "BASIC METABOLIC PANEL", Lines: []labs.AnalyteLine{line}, Report: &labs.Report{
			Name: "BASIC METABOLIC PANEL", Collected: "2024-03-02 08:15", CollectedISO: "2024-03-02T08:15:00-05:00",
			Status: "final", Performer: "Riverside Core Laboratory", Conclusion: "Potassium may be falsely raised\nby hemolysis.",
		}},
		{Lines: []labs.AnalyteLine{other}},
	}
	got := htmlcheck.MustRender(t, labs.Fragment(p)) + "\n"
	checkGolden(t, "summary-report", got)
	doc := htmlcheck.MustParse(t, got)
	htmlcheck.AssertCSPSafe(t, doc)
	groups := doc.Find(`[data-testid="summary-group"]`)
	if groups.Length() != 2 {
		t.Fatalf("%d groups", groups.Length())
	}
	caption := groups.First().Find("caption")
	for sel, want := range map[string]string{
		`[data-testid="report-collected"]`:  "2024-03-02 08:15",
		`[data-testid="report-status"]`:     "Final",
		`[data-testid="report-performer"]`:  "Riverside Core Laboratory",
		`[data-testid="report-conclusion"]`: "Conclusion: Potassium may be falsely raised by hemolysis.",
	} {
		if got := text(caption.Find(sel)); got != want {
			t.Errorf("%s = %q, want %q", sel, got, want)
		}
	}
	if !strings.HasPrefix(text(caption), "BASIC METABOLIC PANEL Collected 2024-03-02 08:15") {
		t.Errorf("caption %q", text(caption))
	}
	if k := groups.Last().AttrOr("data-kind", ""); k != "other" || !strings.Contains(text(groups.Last().Find("caption")), "Other results") {
		t.Errorf("last group is %q %q", k, text(groups.Last().Find("caption")))
	}
}

// TestAnalyteEpicDetails: the drill-down of a test with Epic's shapes shows
// the latest specimen and performing lab, every code and unit its line
// brings together, and per result the notes, specimen, lab, collected and
// resulted times; the all-results table leaves the details out.
func TestAnalyteEpicDetails(t *testing.T) {
	p := baseProps()
	p.Mode, p.BasePath = labs.ModeAnalyte, "/l/L1"
	latest := shapes["noted"]
	latest.Specimen, latest.Performer = "Blood", "Riverside Core Laboratory"
	latest.Issued, latest.IssuedISO = "2 Mar 2024 09:55", "2024-03-02T09:55:00-05:00"
	older := shapes["computed"]
	older.Name, older.Unit, older.Specimen = "Glucose", "mmol/L", "Serum"
	p.Analyte = &labs.Analyte{Key: "c501-2-1538", Name: "Glucose", Unit: "mg/dL", Range: "70–99",
		Codes: []string{"Epic component 1538", "LOINC 2345-7"}, Units: []string{"mg/dL", "mmol/L"},
		Rows: []labs.Row{latest, older}, BackURL: "/l/L1"}
	got := htmlcheck.MustRender(t, labs.Fragment(p)) + "\n"
	checkGolden(t, "analyte-epic", got)
	doc := htmlcheck.MustParse(t, got)
	htmlcheck.AssertCSPSafe(t, doc)
	for id, want := range map[string]string{
		"analyte-specimen":  "Blood",
		"analyte-performer": "Riverside Core Laboratory",
		"analyte-codes":     "Epic component 1538, LOINC 2345-7",
		"analyte-units":     "mg/dL, mmol/L",
	} {
		if got := text(doc.Find(`[data-testid="` + id + `"]`)); got != want {
			t.Errorf("%s = %q, want %q", id, got, want)
		}
	}
	rows := doc.Find(`[data-testid="analyte"] [data-testid="result-row"]`)
	first, second := rows.Eq(0), rows.Eq(1)
	if got := text(first.Find(`[data-testid="result-details"]`)); got != "Specimen: Blood · Lab: Riverside Core Laboratory" {
		t.Errorf("details %q", got)
	}
	if got := first.Find(`[data-testid="issued"] time`).AttrOr("datetime", ""); got != latest.IssuedISO {
		t.Errorf("resulted time %q", got)
	}
	if got := text(first.Find(`[data-testid="collected"] time`).First()); got != latest.Collected {
		t.Errorf("collected %q", got)
	}
	if first.Find(`[data-testid="note"]`).Length() != 2 || text(second.Find(`[data-testid="result-details"]`)) != "Specimen: Serum" ||
		second.Find(`[data-testid="issued"]`).Length() != 0 {
		t.Error("per-result notes or details wrong")
	}

	list := mustFragmentDoc(t, baseProps(latest))
	if list.Find(`[data-testid="result-details"], [data-testid="issued"]`).Length() != 0 || list.Find(`[data-testid="note"]`).Length() != 2 {
		t.Error("all results shows the details, or not the notes")
	}
}

// flowsheetProps is a flowsheet of two panels' tests over three collection
// times, the newest screen of 25.
func flowsheetProps() labs.Props {
	p := baseProps()
	p.Mode, p.BasePath, p.TimeZone, p.Shown, p.Total = labs.ModeFlowsheet, "/l/L1", "America/Chicago", 6, 6
	p.Filter = labs.Filter{Range: "1y"}
	k := shapes["computed"]
	k.Value = "5.6"
	old := shapes["quantity"]
	old.ID, old.Value, old.Flag, old.FlagText = "k2", "4.1", labs.FlagNone, ""
	noted := shapes["noted"]
	corrected := shapes["corrected"]
	corrected.Unit = "meq/L"
	p.Flowsheet = &labs.Flowsheet{
		Columns: []labs.FlowColumn{
			{Date: "2024-03-02", Time: "08:15", ISO: "2024-03-02T08:15:00-06:00"},
			{Date: "2024-02-01", Time: "08:00", ISO: "2024-02-01T08:00:00-06:00"},
			{Date: "2024-01-15", ISO: "2024-01-15"},
		},
		Groups: []labs.FlowGroup{
			{Name: "BASIC METABOLIC PANEL", Rows: []labs.FlowRow{
				{Key: "c501-2-1520", Name: "Potassium", URL: "/l/L1/a/c501-2-1520?range=1y&view=flowsheet", Unit: "mmol/L", Range: "3.5–5.1",
					Cells: []labs.FlowCell{{Results: []labs.Row{k}}, {Results: []labs.Row{old}}, {}}},
				{Key: "c501-2-1526", Name: "Sodium", URL: "/l/L1/a/c501-2-1526?range=1y&view=flowsheet", Unit: "mmol/L", Range: "135–145",
					Cells: []labs.FlowCell{{}, {}, {Results: []labs.Row{corrected}}}},
			}},
			{Rows: []labs.FlowRow{
				{Key: "c501-2-1538", Name: "Glucose", URL: "/l/L1/a/c501-2-1538?range=1y&view=flowsheet", Unit: "mg/dL", Range: "70–99",
					Cells: []labs.FlowCell{{Results: []labs.Row{noted}}, {}, {}}},
			}},
		},
		Offset: 0, Total: 25, OlderURL: "/l/L1?col=20&range=1y&view=flowsheet", Untimed: 2,
	}
	return p
}

// TestFlowsheetGolden: the flowsheet is a real table in a labelled,
// focusable scroll region: a caption, column headers for the collection
// times, row headers for the tests (sticky), a header per panel, each cell
// with its value, flag and computed-flag hint; paging links keep the
// filter, and the filter form keeps the view.
func TestFlowsheetGolden(t *testing.T) {
	p := flowsheetProps()
	got := htmlcheck.MustRender(t, labs.Fragment(p)) + "\n"
	checkGolden(t, "flowsheet", got)
	doc := htmlcheck.MustParse(t, got)
	htmlcheck.AssertCSPSafe(t, doc)

	region := doc.Find(`[data-testid="flowsheet-scroll"]`)
	table := region.Find(`table[data-testid="flowsheet"]`)
	if region.AttrOr("tabindex", "") != "0" || region.AttrOr("role", "") != "region" ||
		region.AttrOr("aria-labelledby", "") != table.Find("caption").AttrOr("id", "x") || !region.HasClass("overflow-x-auto") {
		t.Errorf("scroll region: %v", region.Nodes[0].Attr)
	}
	if got := text(table.Find("caption")); got != "Flowsheet: results by collection time, newest first; times 1 to 3 of 25" {
		t.Errorf("caption %q", got)
	}
	var cols []string
	table.Find(`thead th[scope="col"]`).Each(func(_ int, s *goquery.Selection) { cols = append(cols, text(s)) })
	if diff := cmp.Diff([]string{"Test", "2024-03-02 08:15", "2024-02-01 08:00", "2024-01-15"}, cols); diff != "" {
		t.Errorf("column headers (-want +got):\n%s", diff)
	}
	var groups []string
	table.Find(`tbody th[scope="rowgroup"]`).Each(func(_ int, s *goquery.Selection) {
		groups = append(groups, text(s)+" "+s.AttrOr("colspan", ""))
	})
	if diff := cmp.Diff([]string{"BASIC METABOLIC PANEL 4", "Other results 4"}, groups); diff != "" {
		t.Errorf("panel headers (-want +got):\n%s", diff)
	}
	rows := table.Find(`[data-testid="flow-row"]`)
	if rows.Length() != 3 {
		t.Fatalf("%d rows", rows.Length())
	}
	rows.Each(func(_ int, r *goquery.Selection) {
		th := r.Find(`th[scope="row"]`)
		if !th.HasClass("sticky") || !th.HasClass("left-0") || !th.HasClass("bg-sl-bg") || r.Find("td").Length() != 3 {
			t.Errorf("row %q: header sticky %v, %d cells", text(th), th.HasClass("sticky"), r.Find("td").Length())
		}
	})
	k := rows.First()
	if got := text(k.Find("td").First()); got != "5.6 ▲ High outside 3.5–5.1" {
		t.Errorf("potassium's newest cell %q", got)
	}
	if f := k.Find(`td [data-testid="flag"]`); f.AttrOr("data-computed", "") != "true" {
		t.Error("the computed flag is not marked")
	}
	if c := rows.Eq(1).Find("td").Last(); !strings.HasPrefix(text(c), "128 meq/L ▼▼ Critical low") || text(c.Find(`[data-testid="status-note"]`)) != "Corrected" {
		t.Errorf("a result in another unit %q", text(c))
	}
	if rows.Eq(2).Find(`[data-testid="flow-note"]`).Length() != 1 {
		t.Error("the note marker is missing")
	}
	if a := k.Find(`[data-testid="flow-test"]`); a.AttrOr("href", "") != "/l/L1/a/c501-2-1520?range=1y&view=flowsheet" {
		t.Errorf("test link %q", a.AttrOr("href", ""))
	}
	pager := doc.Find(`[data-testid="flow-pager"]`)
	if pager.Find(`[data-testid="flow-newer"]`).Length() != 0 || pager.Find(`[data-testid="flow-older"]`).AttrOr("href", "") != "/l/L1?col=20&range=1y&view=flowsheet" ||
		text(pager.Find(`[data-testid="flow-range"]`)) != "Times 1 to 3 of 25" {
		t.Errorf("pager %q", text(pager))
	}
	if got := doc.Find(`form[data-testid="filters"] input[name="view"]`).AttrOr("value", ""); got != "flowsheet" {
		t.Errorf("the filter form drops the view: %q", got)
	}
	if doc.Find(`[data-testid="tab-flowsheet"]`).AttrOr("aria-current", "") != "page" {
		t.Error("the flowsheet tab is not current")
	}
	if got := text(doc.Find(`[data-testid="flow-untimed"]`)); !strings.HasPrefix(got, "2 results have no collection time") {
		t.Errorf("untimed note %q", got)
	}

	// While loading, Retry of a broken stream asks for the flowsheet again,
	// column offset included.
	p.Flowsheet.Offset = 20
	p.Loading = &labs.Loading{Fetched: 6, Total: 10}
	p.LiveURL = "/l/L1/live?v=tok.1"
	doc = mustFragmentDoc(t, p)
	if got := doc.Find(`#labs-live [data-testid="retry"]`).AttrOr("hx-get", ""); got != "/l/L1?col=20&range=1y&view=flowsheet" {
		t.Errorf("Retry URL %q", got)
	}
}
