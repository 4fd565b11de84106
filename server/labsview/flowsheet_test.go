package labsview

import (
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"smartlabs/components/labs"
	"smartlabs/server/fhir"
)

// flowCells lists a flowsheet's rows as "name: cell|cell|…", values as shown.
func flowCells(fs *labs.Flowsheet) map[string][]string {
	out := map[string][]string{}
	for _, g := range fs.Groups {
		for _, r := range g.Rows {
			var cells []string
			for _, c := range r.Cells {
				s := ""
				for i, x := range c.Results {
					if i > 0 {
						s += "/"
					}
					s += x.Value + string(x.Flag)
				}
				cells = append(cells, s)
			}
			out[g.Name+" > "+r.Name] = cells
		}
	}
	return out
}

// TestFlowsheetOf: collection times are columns, newest first; tests are
// rows grouped by panel with a cell per column; results at the same time
// share a column; results without a time are counted, not shown.
func TestFlowsheetOf(t *testing.T) {
	day := func(d, h int) time.Time { return time.Date(2026, 11, d, h, 0, 0, 0, time.UTC) }
	bmp := func(o fhir.Observation) fhir.Observation {
		o.BasedOn = []fhir.Reference{{Reference: "ServiceRequest/1", Display: "BASIC METABOLIC PANEL"}}
		return o
	}
	obs := []fhir.Observation{
		bmp(obsAt("k1", "2823-3", "Potassium", "4.1", day(1, 8), "")),
		bmp(obsAt("k3", "2823-3", "Potassium", "5.6", day(3, 8), "H")),
		bmp(obsAt("n3", "2951-2", "Sodium", "140", day(3, 8), "")),
		obsAt("h2", "718-7", "Hemoglobin", "4.0", day(2, 8), ""),
		obsAt("h2b", "718-7", "Hemoglobin", "4.2", day(2, 8), ""),
		{ID: "u", Status: "final", Code: fhir.Concept{Text: "Untimed"}, Value: num("1", "mmol/L")},
		{ID: "d", Status: "final", Code: fhir.Concept{Text: "Dated"}, LOINC: "1-1", Effective: time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC), EffectiveDateOnly: true, Value: num("3.6", "mmol/L")},
	}
	rs := Results(obs, time.UTC)
	fs := FlowsheetOf(rs, PanelsOf(rs, nil), labs.Filter{}, "/l/L", 0)
	wantCols := []labs.FlowColumn{
		{Date: "2026-11-03", Time: "08:00", ISO: "2026-11-03T08:00:00Z"},
		{Date: "2026-11-02", Time: "08:00", ISO: "2026-11-02T08:00:00Z"},
		{Date: "2026-11-02", ISO: "2026-11-02"},
		{Date: "2026-11-01", Time: "08:00", ISO: "2026-11-01T08:00:00Z"},
	}
	if diff := cmp.Diff(wantCols, fs.Columns); diff != "" {
		t.Errorf("columns (-want +got):\n%s", diff)
	}
	want := map[string][]string{
		"BASIC METABOLIC PANEL > Potassium": {"5.6H", "", "", "4.1"},
		"BASIC METABOLIC PANEL > Sodium":    {"140", "", "", ""},
		" > Hemoglobin":                     {"", "4.0/4.2", "", ""},
		" > Dated":                          {"", "", "3.6", ""},
	}
	if diff := cmp.Diff(want, flowCells(fs)); diff != "" {
		t.Errorf("cells (-want +got):\n%s", diff)
	}
	if fs.Groups[0].Name != "BASIC METABOLIC PANEL" || fs.Groups[len(fs.Groups)-1].Name != "" {
		t.Errorf("groups %+v: panels first, then tests in no panel", fs.Groups)
	}
	if fs.Untimed != 1 || fs.Total != 4 || fs.Offset != 0 || fs.NewerURL != "" || fs.OlderURL != "" {
		t.Errorf("untimed %d, total %d, offset %d, newer %q, older %q", fs.Untimed, fs.Total, fs.Offset, fs.NewerURL, fs.OlderURL)
	}
	row := fs.Groups[0].Rows[0]
	if row.URL != "/l/L/a/2823-3?view=flowsheet" || row.Unit != "mmol/L" || row.Range != "3.5–5.1" || row.Cells[0].Results[0].ID != "k3" {
		t.Errorf("row %+v", row)
	}
}

// TestFlowsheetPaging: at most labs.FlowsheetColumns columns a screen, with
// links to newer and older columns that keep the filter; an offset past the
// end shows the oldest screen.
func TestFlowsheetPaging(t *testing.T) {
	var obs []fhir.Observation
	start := time.Date(2026, 1, 1, 8, 0, 0, 0, time.UTC)
	for i := range 45 {
		obs = append(obs, obsAt("k"+strconv.Itoa(i), "2823-3", "Potassium", strconv.Itoa(4+i%2), start.AddDate(0, 0, i), ""))
	}
	rs := Results(obs, time.UTC)
	f := labs.Filter{Query: "pot"}
	tests := []struct {
		col, offset, n int
		first          string
		newer, older   string
	}{
		{0, 0, 20, "2026-02-14", "", "/l/L?col=20&q=pot&view=flowsheet"},
		{20, 20, 20, "2026-01-25", "/l/L?q=pot&view=flowsheet", "/l/L?col=40&q=pot&view=flowsheet"},
		{40, 40, 5, "2026-01-05", "/l/L?col=20&q=pot&view=flowsheet", ""},
		{7, 7, 20, "2026-02-07", "/l/L?q=pot&view=flowsheet", "/l/L?col=27&q=pot&view=flowsheet"},
		{1000, 25, 20, "2026-01-20", "/l/L?col=5&q=pot&view=flowsheet", ""},
	}
	for _, tt := range tests {
		fs := FlowsheetOf(rs, PanelsOf(rs, nil), f, "/l/L", tt.col)
		if fs.Offset != tt.offset || len(fs.Columns) != tt.n || fs.Columns[0].Date != tt.first || fs.NewerURL != tt.newer || fs.OlderURL != tt.older || fs.Total != 45 {
			t.Errorf("col %d: offset %d, %d columns from %s, newer %q, older %q", tt.col, fs.Offset, len(fs.Columns), fs.Columns[0].Date, fs.NewerURL, fs.OlderURL)
		}
		if len(fs.Groups) != 1 || len(fs.Groups[0].Rows) != 1 || len(fs.Groups[0].Rows[0].Cells) != tt.n {
			t.Errorf("col %d: rows %+v", tt.col, fs.Groups)
		}
	}
	if fs := FlowsheetOf(nil, Panels{}, f, "/l/L", 0); fs.Total != 0 || len(fs.Columns) != 0 {
		t.Errorf("empty flowsheet %+v", fs)
	}
}

func TestParseColumnAndMode(t *testing.T) {
	for q, want := range map[string]int{"": 0, "col=20": 20, "col=-1": 0, "col=x": 0, "col=1000000": 1000000, "col=1000001": 0, "col=99999999999999999999": 0} {
		v, _ := url.ParseQuery(q)
		if got := ParseColumn(v); got != want {
			t.Errorf("ParseColumn(%q) = %d, want %d", q, got, want)
		}
	}
	for q, want := range map[string]labs.Mode{"view=flowsheet": labs.ModeFlowsheet, "view=all": labs.ModeList, "": labs.ModeSummary, "view=Flowsheet": labs.ModeSummary} {
		v, _ := url.ParseQuery(q)
		if got := ParseMode(v); got != want {
			t.Errorf("ParseMode(%q) = %d, want %d", q, got, want)
		}
	}
}
