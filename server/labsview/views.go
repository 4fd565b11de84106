package labsview

import (
	"crypto/sha256"
	"encoding/hex"
	"math"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
	"unsafe"

	"smartlabs/components/labs"
	"smartlabs/server/fhir"
)

// Result is one result mapped for the views: its row, plus what filters,
// grouping and charts compute on.
type Result struct {
	Row labs.Row
	// At is the collection time, zero when absent.
	At time.Time
	// Key groups results of one analyte: the LOINC code, else a hash of the name.
	Key string
	// Num is the value as a number when HasNum: a quantity sent without
	// comparator whose number a float64 holds (never ±Inf or NaN).
	Num    float64
	HasNum bool
	// Unplotted is true for a plain number a chart cannot place: beyond
	// float64 range (e.g. 1e400, shown as sent) or without a collection time.
	Unplotted bool
	// Low and High bound the first reference range numerically, nil when
	// open or when the limit is not a number a float64 holds.
	Low, High *float64
	// Members are the ids of the results this one groups (hasMember); when it
	// has members and no value of its own it is a panel, not an analyte.
	Members []string
	// DerivedFrom are the ids of the results this one was derived from.
	DerivedFrom []string
	// Panel is true for a grouping result without a value of its own.
	Panel bool
	// OrderName names the order the result fulfils (basedOn's display); "" when none.
	OrderName string
	// codings are the test's codes, named in its drill-down; issued is when
	// the result was released (in the view's zone), formatted for the
	// drill-down only.
	codings []fhir.Coding
	issued  time.Time
	// Size estimates the bytes the result holds, for the cache's bound.
	Size int

	// ranges are the reference ranges a flag or the range shown may come
	// from, kept when they depend on the patient's sex or age (bySubject), to
	// be picked for the patient by ForSubject. computable is true when the
	// lab sent no interpretation and the value is a plain number, so a flag
	// may be computed.
	ranges     []refRange
	bySubject  bool
	computable bool
}

// Test identity. A test is keyed by the organisation's Epic component code
// when it has one (the code every result of the test carries, LOINC-mapped
// or not), else by its LOINC code, else by its name. Keys are safe in a URL
// path: a LOINC code, "c<org>-<env>-<code>" for a plain component code,
// "k" and a hash for any other component code, "n" and a hash of the name.
var (
	// loincCode is the shape of a LOINC code; other codes are hashed into keys.
	loincCode = regexp.MustCompile(`^[0-9]{1,10}-[0-9]$`)
	// epicComponentSystem is Epic's component code system,
	// urn:oid:1.2.840.114350.1.13.<org>.<env>.7.2.768282; org and env differ
	// per organisation.
	epicComponentSystem = regexp.MustCompile(`^urn:oid:1\.2\.840\.114350\.1\.13\.([0-9]{1,12})\.([0-9]{1,12})\.7\.2\.768282$`)
	// plainCode is a component code used as it is in a key.
	plainCode = regexp.MustCompile(`^[0-9A-Za-z]{1,32}$`)
)

// maxCodes bounds the codes of one result its drill-down names.
const maxCodes = 4

// Results maps Observations to results, newest first (as Rows orders them).
// Entered-in-error results are left out.
func Results(obs []fhir.Observation, loc *time.Location) []Result {
	if loc == nil {
		loc = time.UTC
	}
	out := make([]Result, 0, len(obs))
	for i := range obs {
		o := &obs[i]
		// Entered-in-error results must never be shown, even if a caller forgot to drop them.
		if o.Status == "entered-in-error" {
			continue
		}
		out = append(out, result(o, loc))
	}
	SortByDate(out)
	return out
}

// SortByDate orders results newest first, then by name; results without a time come last.
func SortByDate(rs []Result) {
	slices.SortStableFunc(rs, func(a, b Result) int {
		switch {
		case a.At.IsZero() != b.At.IsZero():
			if a.At.IsZero() {
				return 1
			}
			return -1
		case !a.At.Equal(b.At):
			return b.At.Compare(a.At)
		default:
			return strings.Compare(a.Row.Name, b.Row.Name)
		}
	})
}

func result(o *fhir.Observation, loc *time.Location) Result {
	r := Result{Row: row(o, loc), At: o.Effective, Key: analyteKey(o)}
	if !r.At.IsZero() && !o.EffectiveDateOnly {
		r.At = r.At.In(loc)
	}
	if q := &o.Value.Quantity; o.Absent == nil && o.Value.Kind == fhir.ValueQuantity && q.ValueText != "" && q.Comparator == "" {
		// A number no float64 holds is shown as sent, never computed with.
		r.Num, r.HasNum = number(q)
		r.Unplotted = !r.HasNum || r.At.IsZero()
	}
	if len(o.Ranges) > 0 {
		rg := o.Ranges[0]
		if v, ok := number(rg.Low); ok {
			r.Low = &v
		}
		if v, ok := number(rg.High); ok {
			r.High = &v
		}
	}
	computeFlag(&r, o)
	r.Members = refIDs(o.HasMember)
	r.DerivedFrom = refIDs(o.DerivedFrom)
	r.OrderName = orderName(o.BasedOn)
	r.codings = o.Code.Codings
	if !o.Issued.IsZero() {
		r.issued = o.Issued.In(loc)
	}
	r.Panel = len(r.Members) > 0 && o.Value.Kind == fhir.ValueNone && len(o.Components) == 0
	r.Size = resultSize + rowSize(&r.Row) + 16*(len(r.Members)+len(r.DerivedFrom)) + 120*len(r.ranges) + len(r.OrderName) + 48*len(r.codings)
	return r
}

// resultSize is the bytes of a Result itself, before what its fields point
// to: the larger part of a result, and it grows with every field added.
const resultSize = int(unsafe.Sizeof(Result{}))

// computeFlag computes r's flag when the lab sent none (see flags.go). A
// flag or range that depends on the patient's sex or age is left to ForSubject.
func computeFlag(r *Result, o *fhir.Observation) {
	if len(o.Ranges) == 0 {
		return
	}
	computable := r.HasNum && len(o.Interpretation) == 0
	bySubject := false
	for i := range o.Ranges {
		if len(o.Ranges[i].AppliesTo) > 0 || o.Ranges[i].AgeLow != nil || o.Ranges[i].AgeHigh != nil {
			bySubject = true
			break
		}
	}
	unit := ""
	if computable {
		unit = ucumCode(&o.Value.Quantity)
	}
	switch {
	case bySubject:
		r.ranges, r.bySubject, r.computable = refRangesOf(o.Ranges, unit), true, computable
	case computable:
		staticFlag(r, o, unit)
	}
}

// number is q's value when q has one that a float64 holds: not absent, not
// beyond float range, never ±Inf or NaN.
func number(q *fhir.Quantity) (float64, bool) {
	if q == nil || q.ValueText == "" || q.Unrepresentable || math.IsInf(q.Value, 0) || math.IsNaN(q.Value) {
		return 0, false
	}
	return q.Value, true
}

// refIDs keeps the ids of Observation references ("Observation/123" -> "123").
func refIDs(refs []string) []string {
	var out []string
	for _, ref := range refs {
		if id, ok := strings.CutPrefix(ref, "Observation/"); ok && id != "" {
			out = append(out, id)
		}
	}
	return out
}

// analyteKey is the key of o's test (see Test identity above).
func analyteKey(o *fhir.Observation) string {
	for _, cd := range o.Code.Codings {
		m := epicComponentSystem.FindStringSubmatch(cd.System)
		if m == nil || cd.Code == "" {
			continue
		}
		if plainCode.MatchString(cd.Code) {
			return "c" + m[1] + "-" + m[2] + "-" + cd.Code
		}
		sum := sha256.Sum256([]byte(cd.System + "|" + cd.Code))
		return "k" + hex.EncodeToString(sum[:8])
	}
	if loincCode.MatchString(o.LOINC) {
		return o.LOINC
	}
	sum := sha256.Sum256([]byte(strings.ToLower(strings.TrimSpace(conceptName(o.Code)))))
	return "n" + hex.EncodeToString(sum[:8])
}

// codeLabel names a code for the drill-down: "Epic component 1520",
// "LOINC 2823-3", else the system and code.
func codeLabel(cd fhir.Coding) string {
	switch {
	case cd.System == loincSystem:
		return "LOINC " + cd.Code
	case epicComponentSystem.MatchString(cd.System):
		return "Epic component " + cd.Code
	case cd.System == "":
		return cd.Code
	default:
		return cd.System + " " + cd.Code
	}
}

// rowSize estimates the bytes a row's strings take.
func rowSize(r *labs.Row) int {
	n := len(r.ID) + len(r.Name) + len(r.Value) + len(r.Unit) + len(r.Absent) + len(r.Range) +
		len(r.FlagText) + len(r.FlagHint) + notesSize(r.Notes) + len(r.Specimen) + len(r.Performer) + len(r.Issued) + len(r.IssuedISO) + len(r.Collected) + len(r.CollectedISO) + len(r.Status) + len(r.StatusNote)
	for _, c := range r.Components {
		n += len(c.Name) + len(c.Value) + len(c.Unit) + len(c.Absent) + len(c.Range) + len(c.FlagText) + 120
	}
	return n
}

// notesSize is the bytes notes take.
func notesSize(ns []string) int {
	n := 0
	for _, s := range ns {
		n += len(s) + 16
	}
	return n
}

// Filter query limits and choices.
const maxQueryRunes = 100

var (
	statusRe = regexp.MustCompile(`^[a-z][a-z-]{0,31}$`)
	// statusOrder is the order statuses are offered in.
	statusOrder = []string{"final", "preliminary", "corrected", "amended", "registered", "cancelled", "unknown"}
)

// ParseFilter reads the filter from a URL query. Anything not understood is
// ignored (the default applies), so a hand-edited URL still shows a view.
func ParseFilter(q url.Values) labs.Filter {
	var f labs.Filter
	switch r := q.Get("range"); r {
	case "7d", "30d", "1y":
		f.Range = r
	}
	text := strings.TrimSpace(q.Get("q"))
	if utf8.RuneCountInString(text) > maxQueryRunes {
		text = string([]rune(text)[:maxQueryRunes])
	}
	f.Query = text
	switch q.Get("abnormal") {
	case "1", "true", "on":
		f.Abnormal = true
	}
	if s := q.Get("status"); statusRe.MatchString(s) {
		f.Status = s
	}
	if q.Get("sort") == "name" {
		f.Sort = "name"
	}
	return f
}

// maxPage bounds the page number of All results a URL may ask for.
const maxPage = 100000

// ParsePage is the page of All results that q asks for (page=N), 1 when
// absent or out of bounds.
func ParsePage(q url.Values) int {
	n, err := strconv.Atoi(q.Get("page"))
	if err != nil || n < 1 || n > maxPage {
		return 1
	}
	return n
}

// ListPage cuts page page (1-based) of labs.ListPageSize rows from rs,
// the results that pass the filter in its order; a page past the last shows
// the last. It returns the page's rows and where it stands.
func ListPage(rs []Result, f labs.Filter, base string, page int) ([]labs.Row, *labs.ListPager) {
	pages := max(1, (len(rs)+labs.ListPageSize-1)/labs.ListPageSize)
	page = min(max(page, 1), pages)
	from := (page - 1) * labs.ListPageSize
	to := min(from+labs.ListPageSize, len(rs))
	l := &labs.ListPager{Page: page, Pages: pages, First: from + 1, Last: to, Total: len(rs)}
	if to == 0 {
		l.First = 0
	}
	if page > 1 {
		l.PrevURL = labs.ListURL(base, f, page-1)
	}
	if page < pages {
		l.NextURL = labs.ListURL(base, f, page+1)
	}
	return RowsOf(rs[from:to]), l
}

// ParseMode reads the "view" parameter: "all" lists every result,
// "flowsheet" is the cumulative view, anything else is the summary.
func ParseMode(q url.Values) labs.Mode {
	switch q.Get("view") {
	case "all":
		return labs.ModeList
	case "flowsheet":
		return labs.ModeFlowsheet
	}
	return labs.ModeSummary
}

// since is the start of a date preset before now; zero for all time.
func since(rng string, now time.Time) time.Time {
	switch rng {
	case "7d":
		return now.AddDate(0, 0, -7)
	case "30d":
		return now.AddDate(0, 0, -30)
	case "1y":
		return now.AddDate(-1, 0, 0)
	}
	return time.Time{}
}

// Apply keeps the results that pass f's period, text and status (and, when
// abnormalRows is set, its abnormal-only switch), in f's order. rs must be
// newest first; it is not changed.
func Apply(rs []Result, f labs.Filter, now time.Time, abnormalRows bool) []Result {
	from := since(f.Range, now)
	q := strings.ToLower(f.Query)
	out := make([]Result, 0, len(rs))
	for i := range rs {
		r := &rs[i]
		if !from.IsZero() && (r.At.IsZero() || r.At.Before(from)) {
			continue
		}
		if f.Status != "" && r.Row.Status != f.Status {
			continue
		}
		if q != "" && !strings.Contains(strings.ToLower(r.Row.Name), q) && !strings.Contains(r.Key, q) {
			continue
		}
		if abnormalRows && f.Abnormal && !r.Row.Flagged() {
			continue
		}
		out = append(out, *r)
	}
	if f.Sort == "name" {
		slices.SortStableFunc(out, func(a, b Result) int {
			return strings.Compare(strings.ToLower(a.Row.Name), strings.ToLower(b.Row.Name))
		})
	}
	return out
}

// RowsOf returns the rows of rs.
func RowsOf(rs []Result) []labs.Row {
	out := make([]labs.Row, 0, len(rs))
	for i := range rs {
		out = append(out, rs[i].Row)
	}
	return out
}

// Statuses lists the distinct statuses in rs, in a fixed clinical order, for the status filter.
func Statuses(rs []Result) []string {
	seen := map[string]bool{}
	for i := range rs {
		seen[rs[i].Row.Status] = true
	}
	var out []string
	for _, s := range statusOrder {
		if seen[s] {
			out = append(out, s)
			delete(seen, s)
		}
	}
	var rest []string
	for s := range seen {
		if s != "" {
			rest = append(rest, s)
		}
	}
	slices.Sort(rest)
	return append(out, rest...)
}

// SparkPoints is how many of the newest results a sparkline shows.
const SparkPoints = 20

// SummaryOf builds the one-line-per-analyte summary of rs (already filtered,
// newest first, any order of f.Sort), with panels from rs's grouping
// results and orders only. Every analyte in rs gets exactly one line; with
// f.Abnormal only those whose latest result is abnormal. Lines link to their
// drill-down under base.
func SummaryOf(rs []Result, f labs.Filter, base string) *labs.Summary {
	return SummaryWith(rs, PanelsOf(rs, nil), f, base)
}

// SummaryWith is SummaryOf with the panels pn (see PanelsOf): each line is
// listed under the panel of its latest result, and a panel's heading shows
// the newest report among them.
func SummaryWith(rs []Result, pn Panels, f labs.Filter, base string) *labs.Summary {
	byDate := rs
	if f.Sort == "name" {
		byDate = slices.Clone(rs)
		SortByDate(byDate)
	}
	type acc struct {
		line      labs.AnalyteLine
		latest    *Result
		prev      *Result
		at        time.Time
		numeric   []*Result
		unplotted int
	}
	var order []string
	groups := map[string]*acc{}
	for i := range byDate {
		r := &byDate[i]
		if r.Panel {
			continue
		}
		a := groups[r.Key]
		if a == nil {
			a = &acc{latest: r, at: r.At}
			a.line = labs.AnalyteLine{
				Key: r.Key, Name: r.Row.Name, Latest: r.Row,
				URL: labs.AnalyteURL(base, r.Key, labs.ModeSummary, f),
			}
			groups[r.Key] = a
			order = append(order, r.Key)
		} else if a.prev == nil {
			a.prev = r
		}
		a.line.Count++
		switch {
		case r.Unplotted:
			a.unplotted++
		case r.HasNum && len(a.numeric) < SparkPoints:
			a.numeric = append(a.numeric, r)
		}
	}

	s := &labs.Summary{}
	byPanel := map[string][]labs.AnalyteLine{}
	reportOf := map[string]*Report{}
	var panelNames []string
	for _, k := range order {
		a := groups[k]
		if f.Abnormal && !a.latest.Row.Flagged() {
			continue
		}
		if a.prev != nil {
			prev := a.prev.Row
			a.line.Previous = &prev
			a.line.Delta, a.line.Dir = delta(a.latest, a.prev)
		}
		a.line.Spark = chartOf(a.numeric, a.latest)
		a.line.Spark.Unplotted = a.unplotted
		if a.latest.Row.Critical() {
			s.Pinned = append(s.Pinned, a.line)
			continue
		}
		name, rep := pn.nameOf(a.latest)
		if _, ok := byPanel[name]; !ok && name != "" {
			panelNames = append(panelNames, name)
		}
		byPanel[name] = append(byPanel[name], a.line)
		if old := reportOf[name]; rep != nil && (old == nil || rep.At.After(old.At)) {
			reportOf[name] = rep
		}
	}
	slices.Sort(panelNames)
	for _, n := range panelNames {
		g := labs.Group{Name: n, Lines: sortLines(byPanel[n], f.Sort)}
		if rep := reportOf[n]; rep != nil {
			info := rep.Info
			g.Report = &info
		}
		s.Groups = append(s.Groups, g)
	}
	if lines := byPanel[""]; len(lines) > 0 {
		s.Groups = append(s.Groups, labs.Group{Lines: sortLines(lines, f.Sort)})
	}
	s.Pinned = sortLines(s.Pinned, f.Sort)
	return s
}

// sortLines orders lines by name, or keeps them newest first (their order of
// arrival from a newest-first list).
func sortLines(lines []labs.AnalyteLine, sort string) []labs.AnalyteLine {
	if sort == "name" {
		slices.SortStableFunc(lines, func(a, b labs.AnalyteLine) int {
			return strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name))
		})
	}
	return lines
}

// chartOf is the chart of numeric results given newest first (each HasNum
// and not Unplotted); the band is the latest result's range.
func chartOf(newestFirst []*Result, latest *Result) labs.Chart {
	c := labs.Chart{Unit: latest.Row.Unit}
	for i := len(newestFirst) - 1; i >= 0; i-- {
		r := newestFirst[i]
		c.Points = append(c.Points, labs.Point{At: r.At, Label: r.Row.Collected, Value: r.Num, Text: r.Row.Value, Flag: r.Row.Flag, Hint: r.Row.FlagHint})
	}
	if len(newestFirst) > 0 {
		ref := newestFirst[0]
		c.Low, c.High = ref.Low, ref.High
		if c.Unit == "" {
			c.Unit = ref.Row.Unit
		}
	}
	return c
}

// maxDeltaDecimals is the most decimal places a change is written with; a
// finer change, or one of 1e15 or more, is written with six significant
// digits in scientific notation ("5.55112e-17").
const maxDeltaDecimals = 9

// delta is latest minus previous as text with the decimals sent, and its direction.
// It is empty when either value is not a plain number a float64 holds, their
// units differ, or the difference overflows (-1e308 to 1e308).
func delta(latest, prev *Result) (string, labs.Direction) {
	if !latest.HasNum || !prev.HasNum || latest.Row.Unit != prev.Row.Unit {
		return "", labs.DirNone
	}
	d := latest.Num - prev.Num
	if math.IsInf(d, 0) || math.IsNaN(d) {
		return "", labs.DirNone
	}
	var text string
	if dec := max(decimals(latest.Row.Value), decimals(prev.Row.Value)); dec <= maxDeltaDecimals && math.Abs(d) < 1e15 {
		scale := math.Pow10(dec)
		d = math.Round(d*scale) / scale
		text = strconv.FormatFloat(math.Abs(d), 'f', dec, 64)
	} else {
		text = strconv.FormatFloat(math.Abs(d), 'g', 6, 64)
	}
	switch {
	case d > 0:
		return "+" + text, labs.DirUp
	case d < 0:
		return "\u2212" + text, labs.DirDown
	default:
		return text, labs.DirSame
	}
}

// decimals counts the decimal places a number as sent shows: "5.40" 2, "12"
// 0, "1.5e-3" 4, "1.2E+3" 0; at most 10,000.
func decimals(s string) int {
	mant, exp, _ := strings.Cut(strings.ToLower(s), "e")
	d := 0
	if i := strings.IndexByte(mant, '.'); i >= 0 {
		d = len(mant) - i - 1
	}
	if exp != "" {
		x, err := strconv.Atoi(exp)
		if err != nil {
			// Beyond int range: only the sign matters.
			x = 10000
			if strings.HasPrefix(exp, "-") {
				x = -10000
			}
		}
		d -= min(max(x, -10000), 10000)
	}
	return min(max(d, 0), 10000)
}

// AnalyteOf builds the drill-down of the analyte key from rs (newest first),
// or nil when no result has that key. from and f say where Back returns to.
func AnalyteOf(rs []Result, key, base string, from labs.Mode, f labs.Filter) *labs.Analyte {
	var hist []*Result
	for i := range rs {
		if rs[i].Key == key && !rs[i].Panel {
			hist = append(hist, &rs[i])
		}
	}
	if len(hist) == 0 {
		return nil
	}
	a := &labs.Analyte{
		Key: key, Name: hist[0].Row.Name, Unit: hist[0].Row.Unit, Range: hist[0].Row.Range,
		BackURL: labs.PageURL(base, from, f),
	}
	var numeric []*Result
	unplotted := 0
	for _, r := range hist {
		row := r.Row
		if !r.issued.IsZero() {
			row.Issued, row.IssuedISO = r.issued.Format(collectedLayout), r.issued.Format(time.RFC3339)
		}
		a.Rows = append(a.Rows, row)
		for i, cd := range r.codings {
			if i == maxCodes {
				break
			}
			if cd.Code == "" {
				continue
			}
			if c := codeLabel(cd); !slices.Contains(a.Codes, c) && len(a.Codes) < 4*maxCodes {
				a.Codes = append(a.Codes, c)
			}
		}
		if u := r.Row.Unit; u != "" && !slices.Contains(a.Units, u) {
			a.Units = append(a.Units, u)
		}
		switch {
		case r.Unplotted:
			unplotted++
		case r.HasNum:
			numeric = append(numeric, r)
		}
	}
	if len(numeric) > 0 {
		a.Chart = chartOf(numeric, numeric[0])
	}
	a.Chart.Unplotted = unplotted
	return a
}
