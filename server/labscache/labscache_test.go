package labscache_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"smartlabs/components/labs"
	"smartlabs/server/labscache"
	"smartlabs/server/labsview"
	"smartlabs/server/panics"
)

// clock is an adjustable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// results makes n results of size bytes each, collected an hour apart from at.
func results(n, size int, at time.Time) []labsview.Result {
	out := make([]labsview.Result, n)
	for i := range out {
		out[i] = labsview.Result{Row: labs.Row{ID: string(rune('a' + i%26))}, At: at.Add(time.Duration(i) * time.Hour), Size: size}
	}
	return out
}

// fill is a fetch that adds pages then finishes.
func fill(pages ...[]labsview.Result) labscache.Fetch {
	return func(_ context.Context, e *labscache.Entry) {
		n := 0
		for i, p := range pages {
			n += len(p)
			e.AddPage(p, n, -1, i == 0)
		}
		e.Finish(labscache.Final{})
	}
}

func mustStart(t *testing.T, c *labscache.Cache, ctx context.Context, id string, force bool, fetch labscache.Fetch) *labscache.Entry {
	t.Helper()
	e, err := c.Start(ctx, id, "", force, fetch)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func mustDone(t *testing.T, e *labscache.Entry) labscache.Snapshot {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.WaitDone(ctx); err != nil {
		t.Fatal(err)
	}
	return e.Snapshot()
}

func TestOneFetchPerLaunch(t *testing.T) {
	c := labscache.New(labscache.Options{})
	var fetches atomic.Int32
	release := make(chan struct{})
	fetch := func(_ context.Context, e *labscache.Entry) {
		fetches.Add(1)
		<-release
		e.AddPage(results(3, 10, time.Now()), 3, 3, true)
		e.Finish(labscache.Final{})
	}
	var wg sync.WaitGroup
	entries := make([]*labscache.Entry, 10)
	for i := range entries {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// A Refresh (force) while the fetch runs joins it too.
			var err error
			if entries[i], err = c.Start(context.Background(), "L1", "", i%2 == 0, fetch); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	close(release)
	for _, e := range entries {
		if e != entries[0] {
			t.Fatal("concurrent starts got different entries")
		}
	}
	if s := mustDone(t, entries[0]); len(s.Results) != 3 || !s.Done {
		t.Fatalf("snapshot = %d results, done %v", len(s.Results), s.Done)
	}
	if n := fetches.Load(); n != 1 {
		t.Fatalf("fetches = %d, want 1", n)
	}
	// A cached launch is not fetched again; a Refresh after the fetch ended is.
	mustStart(t, c, context.Background(), "L1", false, fetch)
	if n := fetches.Load(); n != 1 {
		t.Fatalf("fetches after a cached start = %d, want 1", n)
	}
	e := mustStart(t, c, context.Background(), "L1", true, fill(results(1, 10, time.Now())))
	if s := mustDone(t, e); len(s.Results) != 1 {
		t.Fatalf("after Refresh: %d results, want 1", len(s.Results))
	}
}

func TestPagesAndRestart(t *testing.T) {
	c := labscache.New(labscache.Options{})
	at := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	step := make(chan struct{})
	e := mustStart(t, c, context.Background(), "L1", false, func(_ context.Context, e *labscache.Entry) {
		e.AddPage(results(2, 10, at), 2, 5, true)
		<-step
		// The paging session expired: the search starts again and the first page is void.
		e.AddPage(results(3, 10, at), 3, 5, true)
		e.AddPage(results(2, 10, at.Add(100*time.Hour)), 5, 5, false)
		e.Finish(labscache.Final{})
	})
	ctx := context.Background()
	if err := e.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	s := e.Snapshot()
	if s.Done || s.Fetched != 2 || s.Total != 5 || len(s.Results) != 2 {
		t.Fatalf("first page: %+v", s)
	}
	close(step)
	s = mustDone(t, e)
	if len(s.Results) != 5 || s.Fetched != 5 {
		t.Fatalf("after restart: %d results, fetched %d; want 5, 5", len(s.Results), s.Fetched)
	}
	for i := 1; i < len(s.Results); i++ {
		if s.Results[i].At.After(s.Results[i-1].At) {
			t.Fatalf("results are not newest first at %d", i)
		}
	}
	if _, b := c.Stats(); b != 50 {
		t.Errorf("bytes = %d, want 50 (the void page no longer counted)", b)
	}
}

func TestBounds(t *testing.T) {
	clk := &clock{t: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)}
	c := labscache.New(labscache.Options{MaxEntries: 2, MaxBytes: 1000, TTL: 10 * time.Minute, Now: clk.now})
	start := func(id string, n, size int) *labscache.Entry {
		t.Helper()
		e := mustStart(t, c, context.Background(), id, false, fill(results(n, size, clk.now())))
		mustDone(t, e)
		clk.add(time.Second)
		return e
	}
	start("A", 2, 100)
	start("B", 2, 100)
	if c.Get("A") == nil {
		t.Fatal("A evicted too early")
	}
	clk.add(time.Second)
	start("C", 2, 100) // Three launches: B, the least recently used, goes.
	if c.Get("B") != nil || c.Get("A") == nil || c.Get("C") == nil {
		t.Fatal("entry bound: want A and C kept, B evicted")
	}
	start("D", 8, 100) // 800 bytes: the others go to stay within 1000.
	if n, b := c.Stats(); b > 1000 || c.Get("D") == nil {
		t.Fatalf("byte bound: %d entries, %d bytes; D kept: %v", n, b, c.Get("D") != nil)
	}
	start("E", 20, 100) // Larger than the whole bound: not kept at all.
	if c.Get("E") != nil {
		t.Fatal("an entry larger than the bound was kept")
	}
	if _, b := c.Stats(); b > 1000 {
		t.Fatalf("bytes = %d over the bound", b)
	}
	clk.add(11 * time.Minute)
	if c.Get("D") != nil {
		t.Fatal("entry kept past its TTL")
	}
	if n, b := c.Stats(); n != 0 || b != 0 {
		t.Fatalf("after expiry: %d entries, %d bytes", n, b)
	}
}

func TestForgetCancelsFetch(t *testing.T) {
	c := labscache.New(labscache.Options{})
	cancelled := make(chan struct{})
	mustStart(t, c, context.Background(), "L1", false, func(ctx context.Context, e *labscache.Entry) {
		<-ctx.Done()
		close(cancelled)
		e.Finish(labscache.Final{Err: ctx.Err()})
	})
	c.Forget("L1")
	select {
	case <-cancelled:
	case <-time.After(5 * time.Second):
		t.Fatal("Forget did not cancel the fetch")
	}
	if c.Get("L1") != nil {
		t.Fatal("entry still cached after Forget")
	}
}

func TestDropLeavesANewerEntry(t *testing.T) {
	c := labscache.New(labscache.Options{})
	old := mustStart(t, c, context.Background(), "L1", false, fill(results(1, 10, time.Now())))
	mustDone(t, old)
	newer := mustStart(t, c, context.Background(), "L1", true, fill(results(2, 10, time.Now())))
	mustDone(t, newer)
	old.Drop()
	if c.Get("L1") != newer {
		t.Fatal("dropping an old entry removed the newer one")
	}
	newer.Drop()
	if c.Get("L1") != nil {
		t.Fatal("Drop left the entry cached")
	}
}

// TestFetchPanicFinishesEntry: a fetch that panics does not take the process
// down. Its entry ends at once with the panic as its error, OnPanic is told,
// and the entry stays cached so that a later Start joins it rather than
// fetching again; only a forced Start (Refresh) fetches again.
func TestFetchPanicFinishesEntry(t *testing.T) {
	type ctxKey struct{}
	var told []*panics.Error
	var mu sync.Mutex
	c := labscache.New(labscache.Options{OnPanic: func(ctx context.Context, pe *panics.Error) {
		if ctx.Value(ctxKey{}) != "req-1" {
			t.Error("OnPanic did not get the fetch's context")
		}
		mu.Lock()
		told = append(told, pe)
		mu.Unlock()
	}})
	var fetches atomic.Int32
	boom := func(_ context.Context, e *labscache.Entry) {
		fetches.Add(1)
		e.AddPage(results(1, 10, time.Now()), 1, 2, true)
		var rs []labsview.Result
		_ = rs[1] // index out of range
	}
	ctx := context.WithValue(context.Background(), ctxKey{}, "req-1")
	e := mustStart(t, c, ctx, "L1", false, boom)
	s := mustDone(t, e)
	var pe *panics.Error
	if !errors.As(s.Final.Err, &pe) || !strings.Contains(pe.Error(), "index out of range") {
		t.Fatalf("final error = %v, want the panic", s.Final.Err)
	}
	if !e.Failed() {
		t.Error("Failed() = false for an entry whose fetch panicked")
	}
	mu.Lock()
	if len(told) != 1 || told[0] != pe {
		t.Errorf("OnPanic told %d times, want once with the entry's error", len(told))
	}
	mu.Unlock()
	if got := mustStart(t, c, ctx, "L1", false, boom); got != e || fetches.Load() != 1 {
		t.Fatalf("a poll after the panic: same entry %v, fetches %d; want the failed entry and 1 fetch", got == e, fetches.Load())
	}
	e2 := mustStart(t, c, ctx, "L1", true, fill(results(2, 10, time.Now())))
	if s := mustDone(t, e2); s.Final.Err != nil || len(s.Results) != 2 || e2.Failed() {
		t.Fatalf("Refresh after the panic: err %v, %d results", s.Final.Err, len(s.Results))
	}
}

// TestFetchWithoutFinish: a fetch that returns without Finish ends its entry
// with an error rather than leaving its waiters to their timeouts.
func TestFetchWithoutFinish(t *testing.T) {
	c := labscache.New(labscache.Options{})
	e := mustStart(t, c, context.Background(), "L1", false, func(context.Context, *labscache.Entry) {})
	if s := mustDone(t, e); s.Final.Err == nil {
		t.Fatal("an unfinished fetch left no error")
	}
}

// blocked is a fetch that adds one page of n results of size bytes, then
// waits for release (or its cancellation) before it finishes. It reports its
// context on ctxs and counts its runs.
type blocked struct {
	n, size int
	release chan struct{}
	ctxs    chan context.Context
	runs    atomic.Int32
}

func newBlocked(n, size int) *blocked {
	return &blocked{n: n, size: size, release: make(chan struct{}), ctxs: make(chan context.Context, 10)}
}

func (b *blocked) fetch(ctx context.Context, e *labscache.Entry) {
	b.runs.Add(1)
	b.ctxs <- ctx
	e.AddPage(results(b.n, b.size, time.Now()), b.n, 2*b.n, true)
	select {
	case <-b.release:
		e.Finish(labscache.Final{})
	case <-ctx.Done():
		e.Finish(labscache.Final{Err: ctx.Err()})
	}
}

func mustWait(t *testing.T, e *labscache.Entry) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.Wait(ctx); err != nil {
		t.Fatal(err)
	}
}

func cancelled(ctx context.Context) bool {
	select {
	case <-ctx.Done():
		return true
	default:
		return false
	}
}

// TestFetchingEntryOverBudgetStays: an entry whose pages pass the byte
// budget while it is still fetching stays cached and keeps its one fetch:
// the next poll joins it instead of starting another full fetch beside it.
func TestFetchingEntryOverBudgetStays(t *testing.T) {
	c := labscache.New(labscache.Options{MaxBytes: 1000})
	b := newBlocked(12, 100) // 1200 bytes: over the budget on its own
	e, err := c.Start(context.Background(), "A", "", false, b.fetch)
	if err != nil {
		t.Fatal(err)
	}
	mustWait(t, e)
	ctx := <-b.ctxs
	if c.Get("A") != e {
		t.Fatal("an entry still fetching was dropped when it passed the byte budget")
	}
	if again, err := c.Start(context.Background(), "A", "", false, b.fetch); err != nil || again != e {
		t.Fatalf("a poll got entry %v, err %v; want the fetching entry", again == e, err)
	}
	if n := b.runs.Load(); n != 1 {
		t.Fatalf("fetches = %d, want 1", n)
	}
	if cancelled(ctx) {
		t.Fatal("the fetch of an entry still cached was cancelled")
	}
	close(b.release)
	mustDone(t, e)
}

// TestSweepSkipsFetchingEntries: the idle expiry never drops an entry that
// is still fetching; once complete, it expires as usual.
func TestSweepSkipsFetchingEntries(t *testing.T) {
	clk := &clock{t: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)}
	c := labscache.New(labscache.Options{TTL: 10 * time.Minute, Now: clk.now})
	b := newBlocked(1, 10)
	e, err := c.Start(context.Background(), "A", "", false, b.fetch)
	if err != nil {
		t.Fatal(err)
	}
	mustWait(t, e)
	ctx := <-b.ctxs
	clk.add(11 * time.Minute)
	if c.Get("A") != e || cancelled(ctx) {
		t.Fatal("the idle expiry dropped (and cancelled) an entry still fetching")
	}
	close(b.release)
	mustDone(t, e)
	clk.add(11 * time.Minute)
	if c.Get("A") != nil {
		t.Fatal("a complete entry outlived its TTL")
	}
}

// TestBusyWhenFetchesFillBudget: while fetches in flight use up the byte
// budget, a new launch's fetch is refused with ErrBusy (and not started),
// while the launches in flight are still served; once they end, it starts.
func TestBusyWhenFetchesFillBudget(t *testing.T) {
	c := labscache.New(labscache.Options{MaxBytes: 1000})
	// A complete entry never blocks a new fetch: it is evicted to make room.
	old, err := c.Start(context.Background(), "old", "", false, fill(results(5, 100, time.Now())))
	if err != nil {
		t.Fatal(err)
	}
	mustDone(t, old)
	a := newBlocked(11, 100)
	ea, err := c.Start(context.Background(), "A", "", false, a.fetch)
	if err != nil {
		t.Fatal(err)
	}
	mustWait(t, ea)
	if c.Get("old") != nil {
		t.Error("the complete entry was kept while a fetch needed its room")
	}
	b := newBlocked(1, 10)
	if e, err := c.Start(context.Background(), "B", "", false, b.fetch); !errors.Is(err, labscache.ErrBusy) || e != nil {
		t.Fatalf("Start while fetches fill the budget: entry %v, err %v; want ErrBusy", e != nil, err)
	}
	if b.runs.Load() != 0 {
		t.Fatal("a refused fetch ran")
	}
	if e, err := c.Start(context.Background(), "A", "", false, a.fetch); err != nil || e != ea {
		t.Fatalf("the launch in flight was refused: %v", err)
	}
	close(a.release)
	mustDone(t, ea)
	eb, err := c.Start(context.Background(), "B", "", false, b.fetch)
	if err != nil {
		t.Fatalf("Start after the fetches ended: %v", err)
	}
	close(b.release)
	mustDone(t, eb)
}

// TestForgetOwner drops every entry of one owner, fetching or complete, and
// cancels its fetches; other owners' entries stay.
func TestForgetOwner(t *testing.T) {
	c := labscache.New(labscache.Options{})
	done := func(ctx context.Context, e *labscache.Entry) { e.Finish(labscache.Final{}) }
	cancelled := make(chan struct{})
	running := func(ctx context.Context, e *labscache.Entry) {
		<-ctx.Done()
		close(cancelled)
		e.Finish(labscache.Final{Err: ctx.Err()})
	}
	a1, _ := c.Start(context.Background(), "a1", "alice", false, done)
	if err := a1.WaitDone(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Start(context.Background(), "a2", "alice", false, running); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Start(context.Background(), "b1", "bob", false, done); err != nil {
		t.Fatal(err)
	}
	c.ForgetOwner("")
	if n, _ := c.Stats(); n != 3 {
		t.Fatalf("ForgetOwner(\"\") left %d entries, want 3", n)
	}
	c.ForgetOwner("alice")
	select {
	case <-cancelled:
	case <-time.After(10 * time.Second):
		t.Fatal("the fetch of a forgotten entry was not cancelled")
	}
	if c.Get("a1") != nil || c.Get("a2") != nil {
		t.Error("an entry of the forgotten owner is still cached")
	}
	if c.Get("b1") == nil {
		t.Error("another owner's entry was dropped")
	}
}

// TestCompleteEntryKeepsNoLiveStates: view states are kept while pages
// arrive, and dropped once the list is complete.
func TestCompleteEntryKeepsNoLiveStates(t *testing.T) {
	c := labscache.New(labscache.Options{})
	step := make(chan struct{})
	e := mustStart(t, c, context.Background(), "L1", false, func(_ context.Context, e *labscache.Entry) {
		e.AddPage(results(2, 10, time.Now()), 2, 4, false)
		<-step
		e.AddPage(results(2, 10, time.Now()), 4, 4, false)
		e.Finish(labscache.Final{})
	})
	if err := e.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.SetLive("view.1", "state 1")
	if v, ok := e.Live("view.1"); !ok || v != "state 1" {
		t.Fatalf("while loading: Live = %v, %v", v, ok)
	}
	close(step)
	mustDone(t, e)
	e.SetLive("view.2", "state 2")
	for _, key := range []string{"view.1", "view.2"} {
		if v, ok := e.Live(key); ok {
			t.Errorf("complete entry still keeps %s: %v", key, v)
		}
	}
}
