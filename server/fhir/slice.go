package fhir

import (
	"cmp"
	"context"
	"errors"
	"net/url"
	"sync"

	"smartlabs/server/panics"
)

// slicing reports whether a search may be sliced.
func (c *Client) slicing() bool { return c.MaxParallel > 1 }

// launchGate is the per-launch bound when slicing is on, nil otherwise: a
// search fetched page after page needs none (one page beside the Patient read).
func (c *Client) launchGate() *Gate {
	if !c.slicing() {
		return nil
	}
	c.launchOnce.Do(func() { c.launch = NewGate(c.MaxParallel) })
	return c.launch
}

// admit waits until a request may be sent under the per-launch and the
// per-issuer bounds, in that order, and returns what to call with the
// request's error when it is over. A context that ends first gives a
// timeout *Error.
func (c *Client) admit(ctx context.Context) (done func(error), err error) {
	lg, ig := c.launchGate(), c.Gate
	lt, err := lg.acquire(ctx)
	if err != nil {
		return nil, transportError(ctx, err)
	}
	it, err := ig.acquire(ctx)
	if err != nil {
		lg.release(lt, outcomeNeutral)
		return nil, transportError(ctx, err)
	}
	return func(err error) {
		o := outcomeOf(err)
		ig.release(it, o)
		lg.release(lt, o)
	}, nil
}

// gated wraps fetch so that each try waits for the bounds; a retry's wait
// happens outside them.
func (c *Client) gated(fetch fetchFunc) fetchFunc {
	return func(ctx context.Context, u *url.URL) (*page, *wireOperationOutcome, error) {
		done, err := c.admit(ctx)
		if err != nil {
			return nil, nil, err
		}
		p, oo, err := fetch(ctx, u)
		done(err)
		return p, oo, err
	}
}

// capsRead is the outcome of reading the issuer's capabilities.
type capsRead struct {
	caps Capabilities
	err  error
}

// readCapabilities starts reading the issuer's capabilities (through the
// cache when there is one) beside the first page. A failed read means no
// capabilities: the search is then not sliced.
func (c *Client) readCapabilities(ctx context.Context) <-chan capsRead {
	ch := make(chan capsRead, 1)
	go func() {
		var r capsRead
		defer func() { ch <- r }()
		// A panic is handed to the search's goroutine, which panics again.
		defer panics.Recover(&r.err)
		if c.Capabilities != nil {
			r.caps, r.err = c.Capabilities.Get(ctx, c)
		} else {
			r.caps, r.err = c.ReadCapabilities(ctx)
		}
	}()
	return ch
}

// windowPage is what a window's walk hands the collector: one page, or the
// error that ended the walk.
type windowPage struct {
	w   Window
	p   *page
	oo  *wireOperationOutcome
	err error
	// outside is set when a result of p lies outside w.
	outside bool
}

// slicer hands out a sliced search's windows, newest first.
type slicer struct {
	lc      *labsCall
	mu      sync.Mutex
	queue   []Window
	started int
}

// next takes the next window to fetch.
func (s *slicer) next() (Window, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.queue) == 0 {
		return Window{}, false
	}
	w := s.queue[0]
	s.queue = s.queue[1:]
	s.started++
	return w, true
}

// emptied is told that window w came back empty. After an empty dated
// window, the windows not yet started become one, open towards the past:
// the record most likely ends there, and each empty window would cost a
// request. When it does not end there, the merged window still holds every
// older result. An empty undated window says nothing about the dated ones.
func (s *slicer) emptied(w Window) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !w.Undated && len(s.queue) > 1 && !s.queue[0].Undated {
		s.queue = []Window{{To: s.queue[0].To}}
	}
}

// sliced fetches the rest of a search whose first page (probe, already in
// res and reported) has a next link, as windows on lc.param: at most
// MaxParallel at once, each following its own next links, newest first.
// Results are kept once by id (a period or a date without time can match two
// windows). fallback is true when a result lay outside its window: the EHR
// ignores the parameter, and the caller fetches page after page instead.
func (lc *labsCall) sliced(ctx context.Context, res *LabsResult, probe *page) (_ *LabsResult, fallback bool) {
	c := lc.c
	s := &slicer{lc: lc, queue: layoutWindows(lc.param, probe.times, c.clock(), c.MaxParallel)}
	res.SlicedBy = lc.param
	seen := make(map[string]bool, len(res.Observations))
	for _, o := range res.Observations {
		seen[o.ID] = true
	}

	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	out := make(chan windowPage)
	var (
		wg       sync.WaitGroup
		pmu      sync.Mutex
		panicked error
	)
	for range min(c.MaxParallel, len(s.queue)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var perr error
			defer func() {
				if perr != nil {
					pmu.Lock()
					panicked = cmp.Or(panicked, perr)
					pmu.Unlock()
					cancel()
				}
			}()
			// A panic ends this window's worker; the search's goroutine
			// panics again with it once every worker is done.
			defer panics.Recover(&perr)
			for {
				w, ok := s.next()
				if !ok || wctx.Err() != nil {
					return
				}
				lc.walk(wctx, s, w, out)
			}
		}()
	}
	go func() {
		wg.Wait()
		close(out)
	}()

	var wrong error
	for m := range out {
		switch {
		case fallback || wrong != nil:
			// Stopping: whatever still arrives is dropped.
		case m.err != nil:
			if KindOf(m.err) == KindWrongPatient {
				wrong = m.err
				cancel()
			} else if res.Err == nil {
				// The first fault ends the search; what arrived is kept.
				res.Err = m.err
				if m.oo != nil {
					res.Outcomes = append(res.Outcomes, toOutcomes(m.oo)...)
				}
				cancel()
			}
		case m.outside:
			fallback = true
			cancel()
		default:
			res.Pages++
			fresh := make([]Observation, 0, len(m.p.observations))
			for _, o := range m.p.observations {
				if !seen[o.ID] {
					seen[o.ID] = true
					fresh = append(fresh, o)
				}
			}
			res.Observations = append(res.Observations, fresh...)
			res.Outcomes = append(res.Outcomes, windowOutcomes(m.p.outcomes)...)
			w := m.w
			lc.report(Progress{Page: fresh, Fetched: len(res.Observations), Total: lc.total, Window: &w})
		}
	}
	res.Windows = s.started
	if panicked != nil {
		panic(panicked)
	}
	if wrong != nil {
		// Data for another patient voids everything, as in a search page after page.
		return &LabsResult{Incomplete: true, Err: wrong, Pages: res.Pages, SlicedBy: res.SlicedBy, Windows: res.Windows}, false
	}
	return res, fallback
}

// windowOutcomes keeps the outcomes of a window's page that speak of the
// record: informational notes ("no results" for an empty window, say) speak
// only of the window, and the first page of the whole search has its own.
func windowOutcomes(in []Outcome) []Outcome {
	var out []Outcome
	for _, o := range in {
		if o.Level != LevelInfo {
			out = append(out, o)
		}
	}
	return out
}

// walk fetches window w page after page and hands each page, or the error
// that ends it, to out. A page with a result outside w ends the walk. An
// expired paging session restarts the window once from its first page: the
// collector keeps results once by id, so nothing is reported twice.
func (lc *labsCall) walk(ctx context.Context, s *slicer, w Window, out chan<- windowPage) {
	first := lc.searchURL(&w)
	u := first
	seen := map[string]bool{}
	restarted := false
	for pages := 0; ; {
		if pages >= lc.c.maxPages() || seen[u.String()] {
			out <- windowPage{w: w, err: newError(KindMalformed, 0, errors.New("paging does not end"))}
			return
		}
		seen[u.String()] = true
		p, oo, err := lc.fetch(ctx, u)
		if err != nil {
			if !restarted && u != first && pagingExpired(err) {
				restarted, u, seen = true, first, map[string]bool{}
				continue
			}
			out <- windowPage{w: w, oo: oo, err: err}
			return
		}
		pages++
		outside := false
		for _, t := range p.times {
			if !w.holds(lc.param, t) {
				outside = true
				break
			}
		}
		out <- windowPage{w: w, p: p, outside: outside}
		if outside || p.next == "" {
			if pages == 1 && !outside && len(p.observations) == 0 {
				s.emptied(w)
			}
			return
		}
		next, err := u.Parse(p.next)
		// The next link is opaque, but it must stay on the issuer's origin.
		if err != nil || !sameOrigin(lc.base, next) {
			out <- windowPage{w: w, err: newError(KindMalformed, 0, errors.New("next link points to another origin"))}
			return
		}
		u = next
	}
}
