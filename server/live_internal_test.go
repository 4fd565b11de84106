package server

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"weak"

	"smartlabs/components/labs"
	"smartlabs/server/labscache"
)

// TestLiveStateKeepsNoRendering: the state a view's update starts from is
// kept in the launch's cache entry by itself. A pointer into the rendering
// it came from would keep every rendered line and the view's props with
// the results, up to 16 views a launch, uncounted.
func TestLiveStateKeepsNoRendering(t *testing.T) {
	c := labscache.New(labscache.Options{})
	hold := make(chan struct{})
	defer close(hold)
	e, err := c.Start(context.Background(), "L1", "", false, func(_ context.Context, e *labscache.Entry) {
		<-hold
		e.Finish(labscache.Final{})
	})
	if err != nil {
		t.Fatal(err)
	}
	p := labs.Props{Mode: labs.ModeList}
	for i := range 200 {
		p.Rows = append(p.Rows, labs.Row{ID: fmt.Sprint("r", i), Name: "Sodium", Value: "140", Unit: "mmol/L"})
	}
	lv, err := renderLive(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	rendering := weak.Make(lv)
	lv.keep(e, "view")
	lv = nil
	runtime.GC()
	if rendering.Value() != nil {
		t.Error("the kept state holds on to the whole rendering of the view")
	}
	st, ok := e.Live("view")
	if !ok {
		t.Fatal("the state was not kept")
	}
	if s := st.(*liveState); s.kind != bodyList || len(s.tables) != 1 || len(s.tables[0].lines) != len(p.Rows) {
		t.Errorf("kept state: kind %q, %d tables, want the list's %d lines", s.kind, len(s.tables), len(p.Rows))
	}
}

// TestCountOnlyChangeSwapsTheCount: between two states of a summary, one
// line's count changed and nothing else of it, and another line changed
// its latest value. The update swaps the first line's count alone and the
// second line whole; an unchanged line is not sent at all.
func TestCountOnlyChangeSwapsTheCount(t *testing.T) {
	summary := func(kCount int, naValue string) labs.Props {
		k := labs.AnalyteLine{Key: "2823-3", URL: "/l/L1/a/2823-3", Name: "Potassium", Count: kCount,
			Latest: labs.Row{ID: "k1", Name: "Potassium", Value: "4.1", Unit: "mmol/L"}}
		na := labs.AnalyteLine{Key: "2951-2", URL: "/l/L1/a/2951-2", Name: "Sodium", Count: 3,
			Latest: labs.Row{ID: "na1", Name: "Sodium", Value: naValue, Unit: "mmol/L"}}
		cl := labs.AnalyteLine{Key: "2075-0", URL: "/l/L1/a/2075-0", Name: "Chloride", Count: 2,
			Latest: labs.Row{ID: "cl1", Name: "Chloride", Value: "101", Unit: "mmol/L"}}
		return labs.Props{Mode: labs.ModeSummary, BasePath: "/l/L1",
			Summary: &labs.Summary{Groups: []labs.Group{{Lines: []labs.AnalyteLine{k, na, cl}}}}}
	}
	ctx := context.Background()
	before, err := renderLive(ctx, summary(12, "140"))
	if err != nil {
		t.Fatal(err)
	}
	after, err := renderLive(ctx, summary(30, "138"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := after.update(ctx, &before.state)
	if err != nil {
		t.Fatal(err)
	}
	u := string(b)
	if !strings.Contains(u, `<span hx-swap-oob="true" id="line-2823-3-n"`) || !strings.Contains(u, "30 results") {
		t.Errorf("the potassium count is not swapped alone: %s", u)
	}
	if strings.Contains(u, `id="line-2823-3" `) {
		t.Error("the potassium line is sent whole although only its count changed")
	}
	if !strings.Contains(u, `<tr hx-swap-oob="true" id="line-2951-2"`) {
		t.Errorf("the sodium line, whose latest value changed, is not sent whole: %s", u)
	}
	if strings.Contains(u, "line-2075-0") {
		t.Error("the unchanged chloride line is sent")
	}
}

// TestLargeLineUpdateSendsTheBodyWhole: when the line-by-line update of
// All results is larger than fullBodyAbove and than the whole body, the
// update sends the body whole instead, once, and no line swaps.
func TestLargeLineUpdateSendsTheBodyWhole(t *testing.T) {
	list := func(prefix string, n int) labs.Props {
		p := labs.Props{Mode: labs.ModeList, BasePath: "/l/L1"}
		for i := range n {
			p.Rows = append(p.Rows, labs.Row{ID: fmt.Sprint(prefix, i), Name: "Sodium", Value: "140", Unit: "mmol/L"})
		}
		return p
	}
	ctx := context.Background()
	before, err := renderLive(ctx, list("a", 5))
	if err != nil {
		t.Fatal(err)
	}
	after, err := renderLive(ctx, list("b", 300))
	if err != nil {
		t.Fatal(err)
	}
	if lines := after.lineUpdates(&before.state); len(lines) <= fullBodyAbove {
		t.Fatalf("line updates are %d bytes, want more than %d for this test", len(lines), fullBodyAbove)
	}
	b, err := after.update(ctx, &before.state)
	if err != nil {
		t.Fatal(err)
	}
	u := string(b)
	if n := strings.Count(u, `<div hx-swap-oob="true" id="labs-body"`); n != 1 {
		t.Errorf("the body is sent %d times, want once", n)
	}
	if strings.Contains(u, "<template>") || strings.Contains(u, `hx-swap-oob="delete"`) {
		t.Error("line swaps are sent beside the whole body")
	}
	for _, id := range []string{"b0", "b299"} {
		if !strings.Contains(u, `id="`+labs.RowID(id)+`"`) {
			t.Errorf("row %s is missing from the body", id)
		}
	}
}
