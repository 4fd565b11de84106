package labsview

import (
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"smartlabs/components/labs"
)

// maxColumn bounds the column offset a URL may ask for.
const maxColumn = 1_000_000

// ParseColumn reads the flowsheet's column offset ("col"): a count of newer
// collection times to skip; anything else is 0.
func ParseColumn(q url.Values) int {
	n, err := strconv.Atoi(q.Get("col"))
	if err != nil || n < 0 || n > maxColumn {
		return 0
	}
	return n
}

// FlowsheetOf builds the flowsheet of rs (already filtered, any order of
// f.Sort) from column offset col: the collection times, newest first,
// labs.FlowsheetColumns at a time, and one row per test that has a result
// among them, grouped by the panel of its newest result shown (see
// PanelsOf). An offset past the oldest time shows the oldest screen.
func FlowsheetOf(rs []Result, pn Panels, f labs.Filter, base string, col int) *labs.Flowsheet {
	fs := &labs.Flowsheet{}
	var times []time.Time
	// label is how each time is shown: as its first result shows it (a date
	// sent without a time of day stays a date). Map keys compare the instant
	// and the zone, so times are keyed in UTC.
	label := map[time.Time]*labs.Row{}
	for i := range rs {
		r := &rs[i]
		if r.Panel {
			continue
		}
		if r.At.IsZero() {
			fs.Untimed++
			continue
		}
		if t := r.At.UTC(); label[t] == nil {
			label[t] = &r.Row
			times = append(times, t)
		}
	}
	slices.SortStableFunc(times, func(a, b time.Time) int { return b.Compare(a) })
	fs.Total = len(times)
	if fs.Total == 0 {
		return fs
	}
	if col < 0 || col >= fs.Total {
		col = max(fs.Total-labs.FlowsheetColumns, 0)
	}
	shown := times[col:min(col+labs.FlowsheetColumns, fs.Total)]
	fs.Offset = col
	if col > 0 {
		fs.NewerURL = labs.FlowsheetURL(base, f, max(col-labs.FlowsheetColumns, 0))
	}
	if end := col + len(shown); end < fs.Total {
		fs.OlderURL = labs.FlowsheetURL(base, f, end)
	}
	index := make(map[time.Time]int, len(shown))
	for i, t := range shown {
		index[t] = i
		row := label[t]
		date, clock, _ := strings.Cut(row.Collected, " ")
		fs.Columns = append(fs.Columns, labs.FlowColumn{Date: date, Time: clock, ISO: row.CollectedISO})
	}

	// Rows in the order of their newest result (newest first), or by name.
	byDate := rs
	if f.Sort == "name" {
		byDate = slices.Clone(rs)
		SortByDate(byDate)
	}
	type acc struct {
		row    labs.FlowRow
		latest *Result
	}
	rows := map[string]*acc{}
	var order []string
	for i := range byDate {
		r := &byDate[i]
		c, ok := index[r.At.UTC()]
		if r.Panel || r.At.IsZero() || !ok {
			continue
		}
		a := rows[r.Key]
		if a == nil {
			a = &acc{latest: r, row: labs.FlowRow{
				Key: r.Key, Name: r.Row.Name, Unit: r.Row.Unit, Range: r.Row.Range,
				URL:   labs.AnalyteURL(base, r.Key, labs.ModeFlowsheet, f),
				Cells: make([]labs.FlowCell, len(shown)),
			}}
			rows[r.Key] = a
			order = append(order, r.Key)
		}
		cell := &a.row.Cells[c]
		cell.Results = append(cell.Results, r.Row)
	}
	if f.Sort == "name" {
		slices.SortStableFunc(order, func(x, y string) int {
			return strings.Compare(strings.ToLower(rows[x].row.Name), strings.ToLower(rows[y].row.Name))
		})
	}
	byPanel := map[string][]labs.FlowRow{}
	var names []string
	for _, k := range order {
		a := rows[k]
		name, _ := pn.nameOf(a.latest)
		if _, ok := byPanel[name]; !ok && name != "" {
			names = append(names, name)
		}
		byPanel[name] = append(byPanel[name], a.row)
	}
	slices.Sort(names)
	for _, n := range names {
		fs.Groups = append(fs.Groups, labs.FlowGroup{Name: n, Rows: byPanel[n]})
	}
	if rest := byPanel[""]; len(rest) > 0 {
		fs.Groups = append(fs.Groups, labs.FlowGroup{Rows: rest})
	}
	return fs
}
