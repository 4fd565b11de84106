package labs

import (
	"net/url"
	"strconv"
	"time"
)

// Mode says which view of the results Props renders.
type Mode int

// Modes. The zero value lists every result, so a Props that only sets Rows
// renders the plain results table.
const (
	// ModeList lists every result that passes the filter, one row each ("All results").
	ModeList Mode = iota
	// ModeSummary shows one line per analyte, critical ones pinned first.
	ModeSummary
	// ModeAnalyte shows one analyte's whole history: chart and table.
	ModeAnalyte
	// ModeFlowsheet is the cumulative view: tests are rows, collection times columns.
	ModeFlowsheet
)

// viewParam is the value of the "view" query parameter of a mode, "" for the summary.
func (m Mode) viewParam() string {
	switch m {
	case ModeList:
		return "all"
	case ModeFlowsheet:
		return "flowsheet"
	}
	return ""
}

// Filter is the state of the filters; it lives in the URL query so a view is deep-linkable.
type Filter struct {
	// Range is a date preset: "7d", "30d", "1y" or "" for all time.
	Range string
	// Query is free text matched against test names.
	Query string
	// Abnormal keeps only abnormal results (in the summary: analytes whose latest result is abnormal).
	Abnormal bool
	// Status keeps only results with this FHIR status; "" keeps all.
	Status string
	// Sort is "date" (newest first, the default) or "name".
	Sort string
}

// Values gives the filter as URL query values, leaving defaults out.
func (f Filter) Values() url.Values {
	v := url.Values{}
	if f.Range != "" {
		v.Set("range", f.Range)
	}
	if f.Query != "" {
		v.Set("q", f.Query)
	}
	if f.Abnormal {
		v.Set("abnormal", "1")
	}
	if f.Status != "" {
		v.Set("status", f.Status)
	}
	if f.Sort != "" && f.Sort != "date" {
		v.Set("sort", f.Sort)
	}
	return v
}

// IsZero reports whether the filter keeps everything in the default order.
func (f Filter) IsZero() bool { return len(f.Values()) == 0 }

// RangePresets are the date presets offered, in order: value and label.
var RangePresets = []struct{ Value, Label string }{
	{"7d", "7 days"}, {"30d", "30 days"}, {"1y", "1 year"}, {"", "All"},
}

// Loading is the progress of a search whose later pages are still arriving.
type Loading struct {
	// Fetched counts results arrived so far; Total is the EHR's count, -1 when unknown.
	Fetched, Total int
}

// Summary is the one-line-per-analyte view.
type Summary struct {
	// Pinned are the analytes whose latest result is critical, shown first.
	Pinned []AnalyteLine
	// Groups are the other analytes: one group per panel, then the ungrouped ones.
	Groups []Group
}

// Group is a set of analyte lines under one heading; Name is "" for results outside any panel.
type Group struct {
	Name  string
	Lines []AnalyteLine
	// Report is the newest lab report of the panel among the lines' latest
	// results; nil when the panel comes from orders or grouping results.
	Report *Report
}

// Report is a lab report (DiagnosticReport) as shown under its panel's heading.
type Report struct {
	Name string
	// Collected is when it was collected, formatted; CollectedISO its machine form.
	Collected, CollectedISO string
	// Status is the FHIR status; StatusNote marks a non-final one ("Preliminary").
	Status, StatusNote string
	// Performer is the performing lab's display; Conclusion as sent.
	Performer, Conclusion string
}

// Direction is how a value moved since the previous result.
type Direction string

// Directions of change.
const (
	DirNone Direction = ""
	DirUp   Direction = "up"
	DirDown Direction = "down"
	DirSame Direction = "same"
)

// AnalyteLine is one analyte in the summary.
type AnalyteLine struct {
	// Key identifies the analyte in URLs; URL opens its drill-down.
	Key, URL string
	// Name is the test name of the latest result.
	Name string
	// Latest is the newest result, its value as sent.
	Latest Row
	// Previous is the result before it, nil when there is none.
	Previous *Row
	// Delta is Latest minus Previous as text ("+0.4"), empty when either is not a plain number.
	Delta string
	// Dir is the direction of the change.
	Dir Direction
	// Count is how many results the analyte has (in the filtered period).
	Count int
	// Spark holds the newest numeric results, oldest first, for the sparkline.
	Spark Chart
}

// Critical reports whether the latest result is critical.
func (a AnalyteLine) Critical() bool { return a.Latest.Critical() }

// Abnormal reports whether the latest result has any flag.
func (a AnalyteLine) Abnormal() bool { return a.Latest.Flagged() }

// Analyte is the drill-down of one analyte.
type Analyte struct {
	Key, Name string
	// Unit and Range are those of the latest result.
	Unit, Range string
	// Codes name every code the line brings together ("LOINC 2823-3",
	// "Epic component 1520"); Units every unit its results were sent in.
	Codes, Units []string
	// Rows is the whole history, newest first.
	Rows []Row
	// Chart holds every numeric result, oldest first.
	Chart Chart
	// BackURL returns to the view the drill-down was opened from.
	BackURL string
}

// ListPageSize is the most rows one page of All results shows: 5,000
// results would be about 8 MB of HTML on one page.
const ListPageSize = 200

// ListPager is where the page of All results stands among the filtered results.
type ListPager struct {
	// Page is the page shown (1 is the first), Pages how many there are.
	Page, Pages int
	// First and Last number the rows shown (1-based); Total counts every
	// result that passes the filter.
	First, Last, Total int
	// PrevURL and NextURL show the page before and after; "" at either end.
	PrevURL, NextURL string
}

// FlowsheetColumns is the most collection times one screen of the flowsheet shows.
const FlowsheetColumns = 20

// Flowsheet is the cumulative view: tests are rows grouped by panel,
// collection times are columns, newest first, FlowsheetColumns at a time.
type Flowsheet struct {
	// Columns are the collection times shown, newest first.
	Columns []FlowColumn
	// Groups are the tests by panel, then those in no panel (Name "").
	Groups []FlowGroup
	// Offset is how many newer collection times come before the first
	// column; Total counts every collection time that passes the filter.
	Offset, Total int
	// NewerURL and OlderURL show the next newer or older columns; "" at either end.
	NewerURL, OlderURL string
	// Untimed counts the results left out because they have no collection time.
	Untimed int
}

// FlowColumn is one collection time: its date and time of day as shown, and
// its RFC 3339 form.
type FlowColumn struct {
	Date, Time, ISO string
}

// FlowGroup is the rows of one panel; Name is "" for tests in no panel.
type FlowGroup struct {
	Name string
	Rows []FlowRow
}

// FlowRow is one test: its name, unit and range (of its newest result shown)
// and one cell per column.
type FlowRow struct {
	Key, Name, URL string
	Unit, Range    string
	Cells          []FlowCell
}

// FlowCell holds the results of one test at one collection time, usually
// one; none leaves the cell empty.
type FlowCell struct {
	Results []Row
}

// Chart is a series of numeric results with the reference band.
type Chart struct {
	Points []Point
	// Low and High bound the reference band; nil when that side is open.
	Low, High *float64
	// Unit labels the value axis.
	Unit string
	// Unplotted counts the results left off the chart: numbers beyond float
	// range (shown as sent) and results without a collection time.
	Unplotted int
}

// Point is one numeric result on a chart.
type Point struct {
	// At is when it was collected; Label is that time as shown.
	At    time.Time
	Label string
	// Value is the number; Text is the value as sent (e.g. "5.40").
	Value float64
	Text  string
	Flag  Flag
	// Hint is the flag's FlagHint: set when the flag was computed.
	Hint string
}

// Flagged reports whether the row or any of its components has a flag.
func (r *Row) Flagged() bool {
	if r.Flag != FlagNone {
		return true
	}
	for _, c := range r.Components {
		if c.Flag != FlagNone {
			return true
		}
	}
	return false
}

// Critical reports whether the row or any of its components has a critical flag.
func (r *Row) Critical() bool {
	if isCritical(r.Flag) {
		return true
	}
	for _, c := range r.Components {
		if isCritical(c.Flag) {
			return true
		}
	}
	return false
}

// thousands formats n with comma thousands separators: 5000 -> "5,000".
func thousands(n int) string {
	s := strconv.Itoa(n)
	sign := ""
	if n < 0 {
		// Not -n: the smallest int is its own negation.
		sign, s = "-", s[1:]
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return sign + s
}

// PageURL is the URL of the labs page of base (the launch's "/l/<id>") in mode
// m with filter f; it is what the browser's address bar shows.
func PageURL(base string, m Mode, f Filter) string {
	v := f.Values()
	if p := m.viewParam(); p != "" {
		v.Set("view", p)
	}
	return withQuery(base, v)
}

// FlowsheetURL is the URL of the flowsheet of base with filter f, from
// column col (0 is the newest collection time).
func FlowsheetURL(base string, f Filter, col int) string {
	v := f.Values()
	v.Set("view", ModeFlowsheet.viewParam())
	if col > 0 {
		v.Set("col", strconv.Itoa(col))
	}
	return withQuery(base, v)
}

// ListURL is the URL of page page (1 is the first) of All results of base
// with filter f.
func ListURL(base string, f Filter, page int) string {
	v := f.Values()
	v.Set("view", ModeList.viewParam())
	if page > 1 {
		v.Set("page", strconv.Itoa(page))
	}
	return withQuery(base, v)
}

// AnalyteURL is the URL of one analyte's drill-down; f is carried along so
// that "Back" returns to the same filtered view.
func AnalyteURL(base, key string, from Mode, f Filter) string {
	v := f.Values()
	if p := from.viewParam(); p != "" {
		v.Set("view", p)
	}
	return withQuery(base+"/a/"+url.PathEscape(key), v)
}

func withQuery(path string, v url.Values) string {
	if q := v.Encode(); q != "" {
		return path + "?" + q
	}
	return path
}
