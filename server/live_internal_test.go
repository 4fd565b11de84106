package server

import (
	"context"
	"fmt"
	"runtime"
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
