// Package labscache keeps each launch's lab results in memory while the
// clinician filters and drills down, so those views need no new EHR request.
// It is bounded in launches and in bytes, entries expire when unused, and it
// is never written to the shared session store: results are patient data and
// the store may be a Redis other services can read.
package labscache

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"sync"
	"time"

	"smartlabs/server/fhir"
	"smartlabs/server/labsview"
	"smartlabs/server/panics"
)

// Defaults of Options. The byte budget is the real bound on memory; the entry
// count only caps bookkeeping, set well above the launches one replica serves
// at once so that clinicians' lists are not evicted from under each other.
const (
	DefaultMaxEntries = 2000
	DefaultMaxBytes   = 256 << 20
	DefaultTTL        = 15 * time.Minute
)

// Options bound a Cache.
type Options struct {
	// MaxEntries bounds the launches held; the least recently used go first.
	MaxEntries int
	// MaxBytes bounds the estimated size of every launch's results together.
	MaxBytes int64
	// TTL drops a launch's results this long after their last use.
	TTL time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// OnPanic, when set, is told of a fetch that panicked, with the fetch's
	// context, just before the entry is finished with the panic as its error.
	OnPanic func(ctx context.Context, pe *panics.Error)
}

// Cache holds the results of many launches, each filled by one fetch.
type Cache struct {
	mu      sync.Mutex
	opts    Options
	entries map[string]*Entry
	bytes   int64
}

// New returns an empty Cache.
func New(o Options) *Cache {
	if o.MaxEntries <= 0 {
		o.MaxEntries = DefaultMaxEntries
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.TTL <= 0 {
		o.TTL = DefaultTTL
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Cache{opts: o, entries: map[string]*Entry{}}
}

// Fetch fills e from the EHR; it must call e.Finish before returning. A
// fetch that panics, or returns without finishing, ends its entry with an
// error: waiters get it at once, and the entry stays cached, so that views
// and polls show the error instead of fetching again; a forced Start does.
type Fetch func(ctx context.Context, e *Entry)

// errUnfinished ends the entry of a fetch that returned without Finish.
var errUnfinished = errors.New("labscache: fetch returned without finishing its entry")

// Get returns the launch's entry, or nil when it is not (or no longer) cached.
func (c *Cache) Get(id string) *Entry {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sweepLocked()
	e := c.entries[id]
	if e != nil {
		e.lastUsed = c.opts.Now()
	}
	return e
}

// ErrBusy refuses a new fetch while the fetches in flight use up the
// cache's bounds: a fetch is never dropped to make room for another, so more
// fetches would only take more memory.
var ErrBusy = errors.New("labscache: the fetches in flight use up the cache")

// Start returns the launch's entry, starting fetch in a new goroutine when
// there is none, or when force is set and the entry's fetch has ended (an
// explicit Refresh: the old results are dropped). Concurrent callers share one
// fetch per launch. The fetch runs under ctx, which should outlive the request.
//
// Complete entries, least recently used first, make room for a new fetch;
// when the fetches in flight alone use up the bounds, Start starts nothing
// and returns ErrBusy (a Refresh then keeps the results it would replace).
//
// owner names who may see the results (a hash of the browser's id), so
// ForgetOwner can drop every launch of a browser that signs out.
func (c *Cache) Start(ctx context.Context, id, owner string, force bool, fetch Fetch) (*Entry, error) {
	c.mu.Lock()
	c.sweepLocked()
	old := c.entries[id]
	// A Refresh while a fetch is still running joins it: a double click, or
	// several tabs refreshing at once, make one fetch, not a cancelled one each.
	if old != nil && (!force || !old.isDone()) {
		old.lastUsed = c.opts.Now()
		c.mu.Unlock()
		return old, nil
	}
	if !c.makeRoomLocked(old) {
		c.mu.Unlock()
		return nil, ErrBusy
	}
	if old != nil {
		c.removeLocked(id, old)
	}
	ctx, cancel := context.WithCancel(ctx)
	e := &Entry{cache: c, id: id, owner: owner, cancel: cancel, changed: make(chan struct{}), lastUsed: c.opts.Now(), total: -1, token: newToken()}
	c.entries[id] = e
	c.mu.Unlock()
	go c.run(ctx, cancel, e, fetch)
	return e, nil
}

// makeRoomLocked evicts complete entries, least recently used first, until
// one more entry fits: fewer than MaxEntries and fewer than MaxBytes bytes,
// replaced (the entry a Refresh replaces, or nil) not counted. It reports
// false when the entries still fetching leave no room.
func (c *Cache) makeRoomLocked(replaced *Entry) bool {
	for {
		n, b := len(c.entries), c.bytes
		if replaced != nil {
			n--
			b -= replaced.sizeOf()
		}
		if n < c.opts.MaxEntries && b < c.opts.MaxBytes {
			return true
		}
		if !c.evictOneLocked(replaced) {
			return false
		}
	}
}

// run runs fetch for e in its own goroutine. A panic of the fetch ends there:
// it finishes e with the panic as its error, so the process lives on.
func (c *Cache) run(ctx context.Context, cancel context.CancelFunc, e *Entry, fetch Fetch) {
	defer cancel()
	defer func() {
		r := recover()
		if r == nil {
			if !e.isDone() {
				e.Finish(Final{Err: errUnfinished, At: c.opts.Now()})
			}
			return
		}
		pe := panics.From(r)
		// Told first, so the panic is logged before any view shows its error.
		if c.opts.OnPanic != nil {
			c.opts.OnPanic(ctx, pe)
		}
		e.Finish(Final{Err: pe, At: c.opts.Now()})
	}()
	fetch(ctx, e)
}

// Forget drops a launch's results and stops its fetch, e.g. when the launch ends.
func (c *Cache) Forget(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.entries[id]; e != nil {
		c.removeLocked(id, e)
	}
}

// ForgetOwner drops the results of every launch of owner and stops their
// fetches, e.g. when that browser signs out: its launch records become
// unreadable at once, and so must their results in memory.
func (c *Cache) ForgetOwner(owner string) {
	if owner == "" {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, e := range c.entries {
		if e.owner == owner {
			c.removeLocked(id, e)
		}
	}
}

// Drop removes e from the cache if it is still the launch's entry; a newer
// entry of the same launch is left alone.
func (e *Entry) Drop() {
	c := e.cache
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries[e.id] == e {
		c.removeLocked(e.id, e)
	}
}

// Stats reports how many launches are cached and their estimated bytes.
func (c *Cache) Stats() (entries int, bytes int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries), c.bytes
}

// removeLocked drops e; its fetch is cancelled and its size no longer counted.
func (c *Cache) removeLocked(id string, e *Entry) {
	if c.entries[id] == e {
		delete(c.entries, id)
	}
	e.cancel()
	e.mu.Lock()
	c.bytes -= e.size
	e.detached = true
	e.mu.Unlock()
}

// sweepLocked drops complete entries unused for longer than the TTL. An
// entry still fetching stays: its fetch is bounded by its own timeout.
func (c *Cache) sweepLocked() {
	cutoff := c.opts.Now().Add(-c.opts.TTL)
	for id, e := range c.entries {
		if e.lastUsed.Before(cutoff) && e.isDone() {
			c.removeLocked(id, e)
		}
	}
}

// evictOneLocked drops the least recently used complete entry other than
// keep; it returns false when there is none.
func (c *Cache) evictOneLocked(keep *Entry) bool {
	var oldID string
	var old *Entry
	for id, e := range c.entries {
		// Only complete lists are evicted: a launch whose pages are still
		// arriving is being watched, and evicting it would make its next poll
		// start the fetch again (with many launches at once, none would
		// finish). Fetches in flight are bounded by Start's ErrBusy.
		if e != keep && e.isDone() && (old == nil || e.lastUsed.Before(old.lastUsed)) {
			oldID, old = id, e
		}
	}
	if old == nil {
		return false
	}
	c.removeLocked(oldID, old)
	return true
}

// grow counts n more bytes for e and settles the cache within its bounds.
func (c *Cache) grow(e *Entry, n int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e.detachedLocked() {
		return
	}
	c.bytes += n
	c.settleLocked(e)
}

// settleLocked evicts complete entries other than e, least recently used
// first, while the cache is over MaxBytes. An entry still fetching is never
// dropped, so the fetches in flight may pass the budget until they end (and
// Start refuses new ones meanwhile). A complete e too large on its own is
// dropped from the cache; the views that hold it still show it.
func (c *Cache) settleLocked(e *Entry) {
	for c.bytes > c.opts.MaxBytes {
		if !c.evictOneLocked(e) {
			break
		}
	}
	if c.bytes > c.opts.MaxBytes && c.entries[e.id] == e {
		e.mu.Lock()
		drop := e.done && e.size > c.opts.MaxBytes
		e.mu.Unlock()
		if drop {
			c.removeLocked(e.id, e)
		}
	}
}

// Final is how a fetch ended.
type Final struct {
	Patient    *fhir.Patient
	PatientErr error
	// Labs is the search outcome; its Observations are not kept (the entry has the results).
	Labs *fhir.LabsResult
	// Reports are the patient's lab reports; nil when they were not granted
	// or their search failed (the views are then what they are without them).
	Reports []labsview.Report
	// Err, when set, means nothing could be fetched: the launch has ended, say.
	Err error
	// At is when the fetch ended.
	At time.Time
}

// Entry is one launch's results, filled page by page.
type Entry struct {
	cache  *Cache
	id     string
	owner  string
	cancel context.CancelFunc

	mu      sync.Mutex
	results []labsview.Result
	sorted  bool
	fetched int
	total   int
	done    bool
	final   Final
	size    int64
	// memo holds rendered views of a complete entry, by view key (see Memo).
	memo      map[string][]byte
	memoOrder []string
	lastUsed  time.Time // guarded by cache.mu
	detached  bool
	// changed is closed and replaced on every change, waking waiters.
	changed chan struct{}
	// token names this entry (a Refresh makes a new one); seq counts its
	// changes. Together they name a state of the results a view showed.
	token string
	seq   uint64
	// live holds what views of the entry showed at recent states (see Live).
	live      map[string]any
	liveOrder []string
}

// newToken is a random name for an entry.
func newToken() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Failed reports whether the entry's fetch has ended with an error (a fetch
// that panicked: other failed fetches drop their entry).
func (e *Entry) Failed() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.done && e.final.Err != nil
}

func (e *Entry) isDone() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.done
}

// sizeOf is the entry's counted size.
func (e *Entry) sizeOf() int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.size
}

func (e *Entry) detachedLocked() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.detached
}

// notifyLocked counts a change and wakes everyone waiting for one; e.mu must be held.
func (e *Entry) notifyLocked() {
	e.seq++
	close(e.changed)
	e.changed = make(chan struct{})
}

// AddPage adds one page of results. restarted discards what earlier pages
// brought (the EHR's paging session expired and the search started again).
//
// The page's bytes are counted, and the cache settled, under the cache's lock
// in the same step that shows the page: whoever sees the page and then asks
// the cache finds it already counted.
func (e *Entry) AddPage(rs []labsview.Result, fetched, total int, restarted bool) {
	var n int64
	for i := range rs {
		n += int64(rs[i].Size)
	}
	c := e.cache
	c.mu.Lock()
	defer c.mu.Unlock()
	e.mu.Lock()
	if e.done {
		e.mu.Unlock()
		return
	}
	if restarted {
		n -= e.size
		e.results, e.size = nil, 0
	}
	e.results = append(e.results, rs...)
	e.sorted = false
	e.size += n
	e.fetched, e.total = fetched, total
	e.notifyLocked()
	detached := e.detached
	e.mu.Unlock()
	if !detached {
		c.bytes += n
		c.settleLocked(e)
	}
}

// Finish records how the fetch ended and marks the entry complete; only
// the first call counts. The cache is settled within its bounds before
// anyone sees the cache again: e may now make way for others, or be too
// large to keep.
func (e *Entry) Finish(f Final) {
	c := e.cache
	c.mu.Lock()
	defer c.mu.Unlock()
	e.mu.Lock()
	if e.done {
		e.mu.Unlock()
		return
	}
	if f.Labs != nil {
		// The results are already in the entry; the copy is not kept twice.
		l := *f.Labs
		l.Observations = nil
		f.Labs = &l
	}
	e.final, e.done = f, true
	n := int64(labsview.ReportsSize(f.Reports))
	e.size += n
	e.notifyLocked()
	detached := e.detached
	e.mu.Unlock()
	if !detached {
		c.bytes += n
		c.settleLocked(e)
	}
}

// Ready reports whether Wait would return at once: the entry has a result or is complete.
func (e *Entry) Ready() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.done || len(e.results) > 0
}

// Wait blocks until the entry has at least one result or is complete, or ctx ends.
func (e *Entry) Wait(ctx context.Context) error {
	return e.waitUntil(ctx, func() bool { return e.done || len(e.results) > 0 })
}

// waitUntil blocks until cond, evaluated under e.mu, holds or ctx ends.
func (e *Entry) waitUntil(ctx context.Context, cond func() bool) error {
	for {
		e.mu.Lock()
		if cond() {
			e.mu.Unlock()
			return nil
		}
		ch := e.changed
		e.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Bounds of an entry's memo of rendered views: a few recent views (the tabs
// and filters a clinician toggles between), each counted in the cache's bytes.
const (
	maxMemoViews = 8
	maxMemoBytes = 1 << 20
)

// Memo returns the rendered view stored under key, if any. Only complete
// entries hold views: their results no longer change, so neither does a view
// computed from them (keys carry the minute for date-relative filters).
func (e *Entry) Memo(key string) ([]byte, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	b, ok := e.memo[key]
	return b, ok
}

// SetMemo stores a copy of b, a rendered view of a complete entry, under
// key, evicting the oldest views beyond the bounds; views of an incomplete
// entry are not kept. The copy is exactly b's length: b is typically a
// render buffer's bytes, whose spare capacity (up to as much again) the
// cache would otherwise hold without counting it.
func (e *Entry) SetMemo(key string, b []byte) {
	if len(b) > maxMemoBytes {
		return
	}
	b = bytes.Clone(b)
	e.mu.Lock()
	if !e.done || e.detached {
		e.mu.Unlock()
		return
	}
	if e.memo == nil {
		e.memo = map[string][]byte{}
	}
	var n int64
	if old, ok := e.memo[key]; ok {
		n -= int64(len(old))
	} else {
		e.memoOrder = append(e.memoOrder, key)
	}
	e.memo[key] = b
	n += int64(len(b))
	for len(e.memoOrder) > maxMemoViews {
		oldest := e.memoOrder[0]
		e.memoOrder = e.memoOrder[1:]
		n -= int64(len(e.memo[oldest]))
		delete(e.memo, oldest)
	}
	e.size += n
	e.mu.Unlock()
	e.cache.grow(e, n)
}

// WaitChange blocks until the entry has changed since change number seq
// (Snapshot.Seq), or ctx ends.
func (e *Entry) WaitChange(ctx context.Context, seq uint64) error {
	return e.waitUntil(ctx, func() bool { return e.seq != seq })
}

// Token names the entry: a Refresh replaces the entry, and its token with it.
func (e *Entry) Token() string { return e.token }

// maxLive bounds the view states an entry remembers for Live.
const maxLive = 16

// Live returns what was stored under key by SetLive, if anything: the state
// a view of the entry showed, so that an update can send only what changed
// since. Only recent states are kept.
func (e *Entry) Live(key string) (any, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	v, ok := e.live[key]
	return v, ok
}

// SetLive stores v under key, forgetting the oldest beyond maxLive. A
// complete entry keeps none: no update follows a complete list, and a
// launch's view states would otherwise stay in memory with its results.
func (e *Entry) SetLive(key string, v any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.done {
		e.live, e.liveOrder = nil, nil
		return
	}
	if e.live == nil {
		e.live = map[string]any{}
	}
	if _, ok := e.live[key]; !ok {
		e.liveOrder = append(e.liveOrder, key)
	}
	e.live[key] = v
	for len(e.liveOrder) > maxLive {
		delete(e.live, e.liveOrder[0])
		e.liveOrder = e.liveOrder[1:]
	}
}

// WaitDone blocks until the entry is complete or ctx ends.
func (e *Entry) WaitDone(ctx context.Context) error {
	return e.waitUntil(ctx, func() bool { return e.done })
}

// Len returns how many results the entry holds.
func (e *Entry) Len() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.results)
}

// Snapshot is a consistent view of an entry.
type Snapshot struct {
	// Results are newest first. The slice is shared: callers must not change it.
	Results []labsview.Result
	// Fetched and Total are the search's progress (Total -1 when unknown).
	Fetched, Total int
	// Done is true once the fetch ended; Final then says how.
	Done  bool
	Final Final
	// Seq counts the entry's changes up to this snapshot.
	Seq uint64
}

// Snapshot returns the entry's current results and progress.
func (e *Entry) Snapshot() Snapshot {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.sorted {
		if e.done {
			// Complete: sort once in place; no page will be added any more.
			labsview.SortByDate(e.results)
			e.sorted = true
		} else {
			rs := append([]labsview.Result(nil), e.results...)
			labsview.SortByDate(rs)
			return Snapshot{Results: rs, Fetched: e.fetched, Total: e.total, Seq: e.seq}
		}
	}
	return Snapshot{Results: e.results, Fetched: e.fetched, Total: e.total, Done: e.done, Final: e.final, Seq: e.seq}
}
