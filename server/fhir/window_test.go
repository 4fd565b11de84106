package fhir

import (
	"net/url"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var layoutNow = time.Date(2026, 12, 2, 15, 30, 0, 0, time.UTC)

// updatedEvery is the times of n results whose meta.lastUpdated are step
// apart, the newest at newest.
func updatedEvery(newest time.Time, step time.Duration, n int) []entryTimes {
	out := make([]entryTimes, n)
	for i := range out {
		out[i].lastUpdated = newest.Add(-step * time.Duration(i)).Format(time.RFC3339)
	}
	return out
}

// checkCover checks that windows cover the whole timeline, newest first:
// the first open towards the future, the last towards the past, each
// sharing its From with the next one's To, every boundary a UTC midnight.
func checkCover(t *testing.T, ws []Window) {
	t.Helper()
	dated := ws
	if len(ws) > 0 && ws[0].Undated {
		dated = ws[1:]
	}
	if len(dated) == 0 || !dated[0].To.IsZero() || !dated[len(dated)-1].From.IsZero() {
		t.Fatalf("windows do not have open ends: %v", ws)
	}
	for i, w := range dated {
		if w.Undated {
			t.Errorf("window %d is undated", i)
		}
		if i+1 < len(dated) && !dated[i+1].To.Equal(w.From) {
			t.Errorf("window %d starts at %v, window %d ends at %v", i, w.From, i+1, dated[i+1].To)
		}
		if !w.From.IsZero() {
			if !w.To.IsZero() && !w.From.Before(w.To) {
				t.Errorf("window %d is empty: %v", i, w)
			}
			if w.From.Location() != time.UTC || !w.From.Equal(w.From.Truncate(24*time.Hour)) {
				t.Errorf("boundary %v is not a UTC midnight", w.From)
			}
		}
	}
	if len(ws) > maxWindows+1 {
		t.Errorf("%d windows, want at most %d", len(ws), maxWindows+1)
	}
}

// TestLayoutWindows: the layout's widths follow the first page's span: P
// windows of about one page's span, then P of twice that, and so on.
func TestLayoutWindows(t *testing.T) {
	day := 24 * time.Hour
	// A page of 100 results updated 18 hours apart spans 74.25 days.
	first := updatedEvery(layoutNow.Add(-2*day), 18*time.Hour, 100)
	ws := layoutWindows(ParamLastUpdated, first, layoutNow, 4)
	checkCover(t, ws)
	unit := 99 * 18 * time.Hour
	top := layoutNow.Add(-2 * day)
	var want []time.Time
	offset := time.Duration(0)
	for i := range 8 {
		offset += unit << (i / 4)
		want = append(want, top.Add(-offset).UTC().Truncate(day))
	}
	var got []time.Time
	for _, w := range ws[:8] {
		got = append(got, w.From)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("first boundaries (-want +got):\n%s", diff)
	}
	if !ws[0].From.After(layoutNow.Add(-2*day - unit - day)) {
		t.Errorf("the first window (%v) is wider than the first page's span", ws[0])
	}

	t.Run("date puts the undated window first", func(t *testing.T) {
		var dated []entryTimes
		for _, e := range first {
			dated = append(dated, entryTimes{effective: e.lastUpdated})
		}
		ws := layoutWindows(ParamDate, dated, layoutNow, 4)
		if !ws[0].Undated {
			t.Fatalf("first window %v, want the undated one", ws[0])
		}
		checkCover(t, ws)
	})
	t.Run("no usable times", func(t *testing.T) {
		ws := layoutWindows(ParamLastUpdated, []entryTimes{{}, {lastUpdated: "garbage"}}, layoutNow, 3)
		checkCover(t, ws)
		if got, want := ws[0].From, layoutNow.Add(-defaultUnit).Truncate(day); !got.Equal(want) {
			t.Errorf("first boundary %v, want %v", got, want)
		}
	})
	t.Run("future dates and a tiny span", func(t *testing.T) {
		first := updatedEvery(time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC), time.Second, 10)
		ws := layoutWindows(ParamLastUpdated, first, layoutNow, 4)
		checkCover(t, ws)
		if got, want := ws[0].From, layoutNow.Add(-minUnit).Truncate(day); !got.Equal(want) {
			t.Errorf("first boundary %v, want %v", got, want)
		}
	})
	t.Run("a record before 1900", func(t *testing.T) {
		first := updatedEvery(time.Date(1850, 1, 1, 0, 0, 0, 0, time.UTC), time.Hour, 10)
		ws := layoutWindows(ParamLastUpdated, first, layoutNow, 4)
		if diff := cmp.Diff([]Window{{}}, ws); diff != "" {
			t.Errorf("windows (-want +got):\n%s", diff)
		}
	})
	t.Run("a huge span stays bounded", func(t *testing.T) {
		first := []entryTimes{{lastUpdated: "2026-12-01T00:00:00Z"}, {lastUpdated: "0001-01-01T00:00:00Z"}}
		ws := layoutWindows(ParamLastUpdated, first, layoutNow, 2)
		checkCover(t, ws)
		for _, w := range ws {
			if !w.From.IsZero() && w.From.Before(earliestBoundary) {
				t.Errorf("boundary %v before %v", w.From, earliestBoundary)
			}
		}
	})
}

// TestWindowQuery: boundaries are sent as ge/lt instants in UTC to the second.
func TestWindowQuery(t *testing.T) {
	b0 := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	b1 := time.Date(2025, 10, 1, 0, 0, 0, 0, time.FixedZone("", 3600))
	for _, tt := range []struct {
		w     Window
		param string
		want  url.Values
	}{
		{Window{From: b0}, ParamLastUpdated, url.Values{"_lastUpdated": {"ge2026-10-01T00:00:00Z"}}},
		{Window{From: b1, To: b0}, ParamDate, url.Values{"date": {"ge2025-09-30T23:00:00Z", "lt2026-10-01T00:00:00Z"}}},
		{Window{To: b1}, ParamDate, url.Values{"date": {"lt2025-09-30T23:00:00Z"}}},
		{Window{Undated: true}, ParamDate, url.Values{"date:missing": {"true"}}},
	} {
		v := url.Values{}
		tt.w.query(tt.param, v)
		if diff := cmp.Diff(tt.want, v); diff != "" {
			t.Errorf("%v: query (-want +got):\n%s", tt.w, diff)
		}
	}
}

// TestWindowHolds: a result lies in its window, give or take a second at
// its end; a date without time spans its whole day in any zone; a period
// spans from start to end; undated results belong to the undated window only.
func TestWindowHolds(t *testing.T) {
	from := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	to := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	w := Window{From: from, To: to}
	tests := []struct {
		name  string
		param string
		w     Window
		t     entryTimes
		want  bool
	}{
		{"updated inside", ParamLastUpdated, w, entryTimes{lastUpdated: "2025-06-01T10:00:00Z"}, true},
		{"updated on From", ParamLastUpdated, w, entryTimes{lastUpdated: "2025-01-01T00:00:00Z"}, true},
		{"updated just before From", ParamLastUpdated, w, entryTimes{lastUpdated: "2024-12-31T23:59:59.999Z"}, false},
		{"updated on To, at the boundary's precision", ParamLastUpdated, w, entryTimes{lastUpdated: "2026-01-01T00:00:00.500Z"}, true},
		{"updated well after To", ParamLastUpdated, w, entryTimes{lastUpdated: "2026-01-01T00:00:01Z"}, false},
		{"updated in another zone", ParamLastUpdated, w, entryTimes{lastUpdated: "2025-12-31T20:00:00-05:00"}, false},
		{"no lastUpdated", ParamLastUpdated, w, entryTimes{effective: "2025-06-01T10:00:00Z"}, false},
		{"open window, any time", ParamLastUpdated, Window{}, entryTimes{lastUpdated: "0001-01-01T00:00:00Z"}, true},
		{"date inside", ParamDate, w, entryTimes{effective: "2025-06-01T10:00:00-05:00"}, true},
		{"date after To", ParamDate, w, entryTimes{effective: "2026-03-01T10:00:00Z"}, false},
		{"date-only day across From", ParamDate, w, entryTimes{effective: "2024-12-31"}, true},
		{"date-only day well before From", ParamDate, w, entryTimes{effective: "2024-12-30"}, false},
		{"month across To", ParamDate, w, entryTimes{effective: "2026-01"}, true},
		{"year before", ParamDate, w, entryTimes{effective: "2023"}, false},
		{"period across From", ParamDate, w, entryTimes{period: true, periodStart: "2024-12-01T00:00:00Z", periodEnd: "2025-02-01T00:00:00Z"}, true},
		{"period without end", ParamDate, w, entryTimes{period: true, periodStart: "2020-01-01T00:00:00Z"}, true},
		{"period wholly before", ParamDate, w, entryTimes{period: true, periodStart: "2020-01-01T00:00:00Z", periodEnd: "2020-02-01T00:00:00Z"}, false},
		{"undated in a date window", ParamDate, w, entryTimes{lastUpdated: "2025-06-01T10:00:00Z"}, false},
		{"undated in the undated window", ParamDate, Window{Undated: true}, entryTimes{lastUpdated: "2025-06-01T10:00:00Z"}, true},
		{"dated in the undated window", ParamDate, Window{Undated: true}, entryTimes{effective: "2025-06-01"}, false},
		{"unreadable date cannot be checked", ParamDate, w, entryTimes{effective: "soon"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.w.holds(tt.param, tt.t); got != tt.want {
				t.Errorf("holds = %v, want %v", got, tt.want)
			}
		})
	}
}
