package labscache

import (
	"context"
	"errors"
	"testing"
	"time"

	"smartlabs/server/labsview"
)

// TestWaitChange: a live update's poll returns as soon as the entry changed
// since the state it shows (a new page, or the fetch completing), and not before.
func TestWaitChange(t *testing.T) {
	c := New(Options{})
	release := make(chan struct{})
	e := mustStart(t, c, context.Background(), "L1", false, func(ctx context.Context, e *Entry) {
		e.AddPage([]labsview.Result{{}}, 1, 3, false)
		<-release
		e.AddPage([]labsview.Result{{}}, 2, 3, false)
		<-release
		e.Finish(Final{})
	})
	if err := e.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	seq := e.Snapshot().Seq
	if err := e.WaitChange(short, seq); err == nil {
		t.Fatal("WaitChange returned with nothing new")
	}
	done := make(chan error, 1)
	go func() { done <- e.WaitChange(context.Background(), seq) }()
	release <- struct{}{}
	select {
	case err := <-done:
		if err != nil || e.Len() != 2 {
			t.Fatalf("err %v, len %d", err, e.Len())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("WaitChange missed the new page")
	}
	seq = e.Snapshot().Seq
	go func() { done <- e.WaitChange(context.Background(), seq) }()
	release <- struct{}{}
	if err := <-done; err != nil || !e.Snapshot().Done {
		t.Fatalf("completion did not end the wait: %v", err)
	}
}

// TestMemo: rendered views are kept only for complete entries, bounded in
// number, and counted in the cache's bytes.
func TestMemo(t *testing.T) {
	c := New(Options{})
	finish := make(chan struct{})
	e := mustStart(t, c, context.Background(), "L1", false, func(ctx context.Context, e *Entry) {
		<-finish
		e.Finish(Final{})
	})
	e.SetMemo("early", []byte("x"))
	if _, ok := e.Memo("early"); ok {
		t.Fatal("a view of an incomplete entry was kept")
	}
	close(finish)
	if err := e.WaitDone(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, before := c.Stats()
	for i := 0; i < maxMemoViews+2; i++ {
		e.SetMemo(string(rune('a'+i)), make([]byte, 100))
	}
	if _, ok := e.Memo("a"); ok {
		t.Error("the oldest view was not evicted")
	}
	if b, ok := e.Memo(string(rune('a' + maxMemoViews + 1))); !ok || len(b) != 100 {
		t.Error("the newest view is missing")
	}
	if _, after := c.Stats(); after-before != int64(100*maxMemoViews) {
		t.Errorf("cache bytes grew by %d, want %d", after-before, 100*maxMemoViews)
	}
	e.SetMemo("huge", make([]byte, maxMemoBytes+1))
	if _, ok := e.Memo("huge"); ok {
		t.Error("an over-size view was kept")
	}
}

// TestMemoHoldsWhatItCounts: a view is kept as a copy of its length, not as
// the render buffer it came in: a buffer grown by doubling has up to as
// much again spare, which the cache would hold without counting. The copy
// is the cache's own: the caller may reuse its buffer.
func TestMemoHoldsWhatItCounts(t *testing.T) {
	c := New(Options{})
	e := mustStart(t, c, context.Background(), "L1", false, func(ctx context.Context, e *Entry) { e.Finish(Final{}) })
	if err := e.WaitDone(context.Background()); err != nil {
		t.Fatal(err)
	}
	const n = 300 << 10
	buf := make([]byte, n, 2*n)
	for i := range buf {
		buf[i] = 'v'
	}
	_, before := c.Stats()
	e.SetMemo("view", buf)
	buf[0] = 'x'
	b, ok := e.Memo("view")
	if !ok {
		t.Fatal("the view was not kept")
	}
	// Allocations are rounded up to a size class or a page, far less than an eighth.
	if len(b) != n || cap(b) > n+n/8 || b[0] != 'v' {
		t.Errorf("kept view: len %d cap %d first %q, want len %d, cap at most %d, first 'v' (a copy)", len(b), cap(b), b[0], n, n+n/8)
	}
	if _, after := c.Stats(); after-before != n {
		t.Errorf("cache bytes grew by %d, want %d", after-before, n)
	}
}

// TestEntryBoundNeverEvictsAFetch: when the launches fetching at once fill
// the entry bound, a further launch is refused with ErrBusy rather than a
// fetch being evicted; the running fetch completes, uncancelled, and once
// it is complete it makes room for the next launch.
func TestEntryBoundNeverEvictsAFetch(t *testing.T) {
	c := New(Options{MaxEntries: 1})
	release := make(chan struct{})
	var cancelled bool
	first := mustStart(t, c, context.Background(), "L1", false, func(ctx context.Context, e *Entry) {
		<-release
		cancelled = ctx.Err() != nil
		e.AddPage([]labsview.Result{{}}, 1, 1, false)
		e.Finish(Final{})
	})
	if _, err := c.Start(context.Background(), "L2", "", false, func(ctx context.Context, e *Entry) { e.Finish(Final{}) }); !errors.Is(err, ErrBusy) {
		t.Fatalf("a second launch while the only slot is fetching: err %v, want ErrBusy", err)
	}
	close(release)
	if err := first.WaitDone(context.Background()); err != nil {
		t.Fatal(err)
	}
	if cancelled || first.Len() != 1 {
		t.Fatalf("running fetch: cancelled %v, %d results", cancelled, first.Len())
	}
	mustStart(t, c, context.Background(), "L3", false, func(ctx context.Context, e *Entry) {})
	if entries, _ := c.Stats(); entries != 1 || c.Get("L3") == nil {
		t.Errorf("cache holds %d launches, want only L3", entries)
	}
}

func mustStart(t *testing.T, c *Cache, ctx context.Context, id string, force bool, fetch Fetch) *Entry {
	t.Helper()
	e, err := c.Start(ctx, id, "", force, fetch)
	if err != nil {
		t.Fatal(err)
	}
	return e
}
