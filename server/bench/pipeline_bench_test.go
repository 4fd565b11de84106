package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"smartlabs/components/labs"
	"smartlabs/server/bench/simclient"
	"smartlabs/server/fhir"
	"smartlabs/server/labsview"
)

// benchSizes are the result counts of every micro-benchmark.
var benchSizes = []int{100, 1000, 5000, 20000}

const (
	benchPageSize = 100
	benchISS      = "https://ehr.bench.invalid/fhir/R4"
)

var (
	fixtureOnce    sync.Once
	fixtureEntries [][]byte
	fixturePatient string
	fixtureErr     error
)

// mustSimEntries returns the Observation entries of the simulator's "Large,
// Test" patient (5,000 results), fetched once per process from an in-process
// simulator through its own OAuth flow.
func mustSimEntries(tb testing.TB) ([][]byte, string) {
	tb.Helper()
	fixtureOnce.Do(func() {
		var f *simclient.Fetched
		f, fixtureErr = simclient.SimPages("Large", 1000)
		if fixtureErr != nil {
			return
		}
		fixtureEntries, fixtureErr = simclient.Entries(f)
		var p struct {
			ID string `json:"id"`
		}
		if fixtureErr == nil {
			fixtureErr = json.Unmarshal(f.Patient, &p)
			fixturePatient = p.ID
		}
	})
	if fixtureErr != nil {
		tb.Fatal(fixtureErr)
	}
	return fixtureEntries, fixturePatient
}

// mustPages returns n results as search pages of benchPageSize and their total size in bytes.
func mustPages(tb testing.TB, n int) ([][]byte, string, int) {
	tb.Helper()
	entries, pid := mustSimEntries(tb)
	pages := simclient.Paginate(entries, n, benchPageSize, benchISS)
	size := 0
	for _, p := range pages {
		size += len(p)
	}
	return pages, pid, size
}

// decode runs a labs search through the public fhir.Client against prepared
// pages served from memory (no network), so only our own work is measured.
func decode(tb testing.TB, pages [][]byte, pid string, want int) *fhir.LabsResult {
	c := &fhir.Client{
		HTTP:    &http.Client{Transport: &simclient.PageTransport{Pages: pages}},
		BaseURL: benchISS, Token: "bench", PageSize: benchPageSize,
	}
	res := c.Labs(context.Background(), pid)
	if res.Err != nil || len(res.Observations) < want*9/10 {
		tb.Fatalf("decoded %d of %d results: %v", len(res.Observations), want, res.Err)
	}
	return res
}

// now is the benchmark's fixed clock for date filters.
var now = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

// props builds the labs view model as the server does for a finished search:
// results mapped once (the per-launch cache holds them), then the view's
// filter and, for the default view (the summary, grouped by test), its lines;
// list is the "all results" table.
func props(res *fhir.LabsResult, loc *time.Location, mode labs.Mode) labs.Props {
	const base = "/l/AAAAAAAAAAAAAAAAAAAAAA"
	rs := labsview.Results(res.Observations, loc)
	p := labs.Props{
		LaunchID:   "AAAAAAAAAAAAAAAAAAAAAA",
		BasePath:   base,
		Mode:       mode,
		Total:      len(rs),
		Statuses:   labsview.Statuses(rs),
		Notices:    labsview.Notices(res),
		Incomplete: res.Incomplete,
		RefreshURL: base + "/labs",
		Generated:  "2026-11-01 06:00 CST",
		TimeZone:   "America/Chicago",
	}
	var f labs.Filter
	if mode == labs.ModeList {
		shown := labsview.Apply(rs, f, now, true)
		p.Rows, p.Shown = labsview.RowsOf(shown), len(shown)
		return p
	}
	shown := labsview.Apply(rs, f, now, false)
	p.Summary = labsview.SummaryOf(shown, f, base)
	p.Shown = len(shown)
	return p
}

func mustLoc(tb testing.TB) *time.Location {
	tb.Helper()
	loc, err := time.LoadLocation("America/Chicago")
	if err != nil {
		tb.Fatal(err)
	}
	return loc
}

// BenchmarkLabs measures each step of a labs view for n results of the
// simulator's own Observations, and all of them together (Total): decoding
// the search pages, building the view model, rendering the default labs view
// (the summary); RenderAllRows renders the "all results" table for scale.
func BenchmarkLabs(b *testing.B) {
	loc := mustLoc(b)
	for _, n := range benchSizes {
		pages, pid, size := mustPages(b, n)
		b.Run(fmt.Sprintf("Decode/n=%d", n), func(b *testing.B) {
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				decode(b, pages, pid, n)
			}
		})
		res := decode(b, pages, pid, n)
		b.Run(fmt.Sprintf("ViewModel/n=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				props(res, loc, labs.ModeSummary)
			}
		})
		for _, mode := range []labs.Mode{labs.ModeSummary, labs.ModeList} {
			p := props(res, loc, mode)
			var buf bytes.Buffer
			name := "Render"
			if mode == labs.ModeList {
				name = "RenderAllRows"
			}
			b.Run(fmt.Sprintf("%s/n=%d", name, n), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					buf.Reset()
					if err := labs.View(p).Render(context.Background(), &buf); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(buf.Len()), "html-bytes")
			})
		}
		b.Run(fmt.Sprintf("Total/n=%d", n), func(b *testing.B) {
			b.SetBytes(int64(size))
			b.ReportAllocs()
			var out bytes.Buffer
			for b.Loop() {
				out.Reset()
				if err := labs.View(props(decode(b, pages, pid, n), loc, labs.ModeSummary)).Render(context.Background(), &out); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestFixtureSize states the fixture's size and checks it is the simulator's data.
func TestFixtureSize(t *testing.T) {
	entries, pid := mustSimEntries(t)
	if len(entries) != 5000 || pid == "" {
		t.Fatalf("got %d entries for patient %q, want the 5,000 of Large, Test", len(entries), pid)
	}
	for _, n := range benchSizes {
		_, _, size := mustPages(t, n)
		t.Logf("%6d results: %9d bytes in %d pages of %d", n, size, (n+benchPageSize-1)/benchPageSize, benchPageSize)
	}
}
