package fhir

import (
	"net/url"
	"strings"
	"time"
)

// Window is one slice of the timeline that a sliced search fetches as a
// search of its own: the results whose slicing parameter (_lastUpdated or
// date) lies in [From, To), or, with Undated, the results without a date
// (date:missing=true).
type Window struct {
	// From and To bound the window; a zero From or To leaves that end open.
	// Adjacent windows share one boundary: one's From is the next's To.
	From, To time.Time
	// Undated is the window of the results without a date.
	Undated bool
}

// boundaryLayout writes a boundary: an instant in UTC, to the second.
const boundaryLayout = "2006-01-02T15:04:05Z"

// query adds the window's parameters for param to v.
func (w Window) query(param string, v url.Values) {
	if w.Undated {
		v.Set(ParamDate+":missing", "true")
		return
	}
	if !w.From.IsZero() {
		v.Add(param, "ge"+w.From.UTC().Format(boundaryLayout))
	}
	if !w.To.IsZero() {
		v.Add(param, "lt"+w.To.UTC().Format(boundaryLayout))
	}
}

// entryTimes are an Observation's times as sent, kept so a sliced search can
// check that each result lies in the window it was returned for. They are
// parsed only then.
type entryTimes struct {
	lastUpdated string
	// effective is effectiveDateTime or effectiveInstant; with period set,
	// periodStart and periodEnd are effectivePeriod's.
	effective              string
	period                 bool
	periodStart, periodEnd string
}

// timesOf keeps the times of w.
func timesOf(w *wireObservation) entryTimes {
	var t entryTimes
	if w.Meta != nil {
		t.lastUpdated = w.Meta.LastUpdated
	}
	switch {
	case w.EffectiveDateTime != "":
		t.effective = w.EffectiveDateTime
	case w.EffectiveInstant != "":
		t.effective = w.EffectiveInstant
	case w.EffectivePeriod != nil:
		t.period = true
		t.periodStart, t.periodEnd = w.EffectivePeriod.Start, w.EffectivePeriod.End
	}
	return t
}

// dated reports whether the result has a date the date parameter searches.
func (t entryTimes) dated() bool {
	return t.effective != "" || t.period && (t.periodStart != "" || t.periodEnd != "")
}

// timeSpan is the stretch of time a date stands for, [lo, hi], with open ends.
type timeSpan struct {
	lo, hi         time.Time
	openLo, openHi bool
}

// zoneSlack widens a date without a time of day: the EHR reads it in its
// own zone, which may be anything from UTC-12 to UTC+14.
const zoneSlack = 14 * time.Hour

// spanOf is the stretch a FHIR date, dateTime or instant stands for: a time
// of day is that instant, a date (YYYY, YYYY-MM, YYYY-MM-DD) its whole
// year, month or day in any time zone. ok is false for an unreadable value.
func spanOf(s string) (sp timeSpan, ok bool) {
	if strings.Contains(s, "T") {
		t, ok := parseInstant(s)
		return timeSpan{lo: t, hi: t}, ok
	}
	for _, f := range []struct {
		layout  string
		y, m, d int
	}{{time.DateOnly, 0, 0, 1}, {"2006-01", 0, 1, 0}, {"2006", 1, 0, 0}} {
		if len(s) != len(f.layout) {
			continue
		}
		t, err := time.Parse(f.layout, s)
		if err != nil {
			return timeSpan{}, false
		}
		return timeSpan{lo: t.Add(-zoneSlack), hi: t.AddDate(f.y, f.m, f.d).Add(zoneSlack)}, true
	}
	return timeSpan{}, false
}

// parseInstant reads a FHIR instant or a dateTime with a time of day.
func parseInstant(s string) (time.Time, bool) {
	t, err := time.Parse(time.RFC3339Nano, s)
	return t, err == nil
}

// effectiveSpan is the stretch effective[x] stands for; a period's missing
// end is open. An unreadable value spans everything: it cannot be checked.
func (t entryTimes) effectiveSpan() timeSpan {
	all := timeSpan{openLo: true, openHi: true}
	if !t.period {
		sp, ok := spanOf(t.effective)
		if !ok {
			return all
		}
		return sp
	}
	sp := all
	if s, ok := spanOf(t.periodStart); ok {
		sp.lo, sp.openLo = s.lo, false
	}
	if e, ok := spanOf(t.periodEnd); ok {
		sp.hi, sp.openHi = e.hi, false
	}
	return sp
}

// boundarySlack is how far past a window's To a result may lie and still
// count as inside: FHIR compares at the precision of the value searched for,
// so "lt 10:00:00" may well match 10:00:00.5.
const boundarySlack = time.Second

// holds reports whether a result with times t may lie in the window when
// the search is sliced on param. It is strict only where the answer is
// certain: a date window returns no undated result, the undated window no
// dated one, and no result lies clearly outside its window. A server that
// ignores the slicing parameter fails this check with its first page that
// holds results of more than one window.
func (w Window) holds(param string, t entryTimes) bool {
	if param == ParamLastUpdated {
		u, ok := parseInstant(t.lastUpdated)
		if !ok {
			// A result without meta.lastUpdated cannot be placed: the server
			// does not keep what it would slice on.
			return false
		}
		return w.spanMeets(timeSpan{lo: u, hi: u})
	}
	if w.Undated {
		return !t.dated()
	}
	if !t.dated() {
		return false
	}
	return w.spanMeets(t.effectiveSpan())
}

// spanMeets reports whether sp overlaps the window, give or take boundarySlack at its To.
func (w Window) spanMeets(sp timeSpan) bool {
	if !w.To.IsZero() && !sp.openLo && !sp.lo.Before(w.To.Add(boundarySlack)) {
		return false
	}
	if !w.From.IsZero() && !sp.openHi && sp.hi.Before(w.From) {
		return false
	}
	return true
}

// Window layout. The boundaries are laid out from the first page of the
// unsliced search, which the client fetches anyway: EHRs return results
// newest first, so that page spans the most recent stretch of the record
// that holds one page of results, unit. The windows then are P of width
// unit, P of twice that, P of four times, and so on (P = the parallel
// bound), at most maxWindows, the last open towards the past and the first
// towards the future. With uniform data that is one page per window at
// first, and every round of P windows takes about as long as all rounds
// before it together, so a record of any length is covered by a few rounds
// whose largest windows run side by side; a recent-heavy record (the usual
// one) has smaller windows than that. Each boundary is a UTC midnight, so
// launches on one day share them. Nothing relies on the layout being right:
// when the first page is not newest first, or the record is uneven, the
// windows are just less even, and every result is still fetched once.
const (
	maxWindows  = 32
	minUnit     = 24 * time.Hour
	maxUnit     = 5 * 365 * 24 * time.Hour
	defaultUnit = 30 * 24 * time.Hour
)

// earliestBoundary: no window boundary is laid before it; older results fall
// in the last, open window.
var earliestBoundary = time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC)

// layoutWindows lays out the windows of a search sliced on param, newest
// first, from the times of the first page's results; parallel is the bound
// on windows fetched at once. With date, the undated window comes first:
// pending orders are the newest results.
func layoutWindows(param string, first []entryTimes, now time.Time, parallel int) []Window {
	var (
		newest, oldest time.Time
		found          bool
	)
	for _, t := range first {
		var (
			at time.Time
			ok bool
		)
		if param == ParamLastUpdated {
			at, ok = parseInstant(t.lastUpdated)
		} else if sp := t.effectiveSpan(); t.dated() && !sp.openLo {
			at, ok = sp.lo, true
		}
		if !ok {
			continue
		}
		if !found || at.After(newest) {
			newest = at
		}
		if !found || at.Before(oldest) {
			oldest = at
		}
		found = true
	}
	top, unit := now, defaultUnit
	if found {
		top = newest
		if top.After(now) {
			top = now
		}
		unit = min(max(top.Sub(oldest), minUnit), maxUnit)
	}
	parallel = max(parallel, 1)
	var bounds []time.Time
	// Offsets stay below room, which keeps the arithmetic far from overflow.
	room := top.Sub(earliestBoundary)
	offset := time.Duration(0)
	for i := 0; len(bounds) < maxWindows-1; i++ {
		width := unit
		for k := 0; k < i/parallel && width < room; k++ {
			width *= 2
		}
		if offset += width; offset > room {
			break
		}
		b := top.Add(-offset).UTC().Truncate(24 * time.Hour)
		if len(bounds) == 0 || b.Before(bounds[len(bounds)-1]) {
			bounds = append(bounds, b)
		}
	}
	var ws []Window
	if param == ParamDate {
		ws = append(ws, Window{Undated: true})
	}
	to := time.Time{}
	for _, b := range bounds {
		ws = append(ws, Window{From: b, To: to})
		to = b
	}
	return append(ws, Window{To: to})
}
