package ehrsim

import (
	"fmt"
	"net/url"
	"strings"
	"time"
)

// SearchParams says which of the parameters an app may slice a search on
// (_lastUpdated, date and date:missing) the Observation search offers.
type SearchParams int

const (
	// ParamsApplied lists _lastUpdated and date (with the missing modifier)
	// in the CapabilityStatement and applies them.
	ParamsApplied SearchParams = iota
	// ParamsDateOnly lists and applies date with the missing modifier;
	// _lastUpdated is neither listed nor applied.
	ParamsDateOnly
	// ParamsDateWithoutMissing lists and applies date without the missing
	// modifier; _lastUpdated is neither listed nor applied.
	ParamsDateWithoutMissing
	// ParamsIgnored lists them all but ignores them, as a server that
	// answers every search with every result.
	ParamsIgnored
	// ParamsUnlisted neither lists nor applies any of them.
	ParamsUnlisted
)

// applies reports which parameters the mode applies.
func (m SearchParams) applies() (lastUpdated, date, missing bool) {
	switch m {
	case ParamsApplied:
		return true, true, true
	case ParamsDateOnly:
		return false, true, true
	case ParamsDateWithoutMissing:
		return false, true, false
	}
	return false, false, false
}

// lists reports which parameters the mode lists in the CapabilityStatement.
func (m SearchParams) lists() (lastUpdated, date, missing bool) {
	if m == ParamsIgnored {
		return true, true, true
	}
	return m.applies()
}

// searchParamDateID is the id of the contained SearchParameter that says the
// date parameter takes the missing modifier.
const searchParamDateID = "observation-date"

// observationSearchParams are the Observation entries of the
// CapabilityStatement's searchParam list, and the SearchParameter resources
// it contains: R4 has no element for a modifier in the CapabilityStatement,
// so the date entry's definition points at a contained SearchParameter whose
// modifier list holds "missing".
func (s *Sim) observationSearchParams() (params []any, contained []any) {
	params = []any{
		map[string]string{"name": "patient", "type": "reference"},
		map[string]string{"name": "category", "type": "token"},
		map[string]string{"name": "_count", "type": "number"},
	}
	lastUpdated, date, missing := s.Switches().SearchParams.lists()
	if lastUpdated {
		params = append(params, map[string]string{"name": "_lastUpdated", "type": "date"})
	}
	if date {
		p := map[string]string{"name": "date", "type": "date"}
		if missing {
			p["definition"] = "#" + searchParamDateID
			contained = append(contained, map[string]any{
				"resourceType": "SearchParameter",
				"id":           searchParamDateID,
				"url":          s.ISS() + "/SearchParameter/" + searchParamDateID,
				"name":         "date",
				"status":       "active",
				"description":  "When the result was collected (effective[x]).",
				"code":         "date",
				"base":         []string{"Observation"},
				"type":         "date",
				"expression":   "Observation.effective",
				"modifier":     []string{"missing"},
			})
		}
		params = append(params, p)
	}
	return params, contained
}

// span is the time a FHIR date, dateTime or instant stands for: [lo, hi).
type span struct {
	lo, hi time.Time
}

// parseSpan reads a FHIR date (YYYY, YYYY-MM, YYYY-MM-DD), dateTime or
// instant as the span its precision covers. A value without a time zone is
// in the lab's zone, as an EHR reads its own local dates.
func parseSpan(s string) (span, bool) {
	for _, f := range []struct {
		layout string
		next   func(time.Time) time.Time
	}{
		{"2006", func(t time.Time) time.Time { return t.AddDate(1, 0, 0) }},
		{"2006-01", func(t time.Time) time.Time { return t.AddDate(0, 1, 0) }},
		{time.DateOnly, func(t time.Time) time.Time { return t.AddDate(0, 0, 1) }},
	} {
		if len(s) == len(f.layout) {
			t, err := time.ParseInLocation(f.layout, s, labZone)
			if err != nil {
				return span{}, false
			}
			return span{t, f.next(t)}, true
		}
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		if t, err = time.ParseInLocation("2006-01-02T15:04:05.999999999", s, labZone); err != nil {
			return span{}, false
		}
	}
	// The precision is the seconds and their fraction as written.
	unit := time.Second
	if _, frac, ok := strings.Cut(s, "."); ok {
		digits := len(frac) - len(strings.TrimLeft(frac, "0123456789"))
		for range min(digits, 9) {
			unit /= 10
		}
	}
	return span{t, t.Add(unit)}, true
}

// bound is one value of a date parameter: a prefix and the span of its date.
type bound struct {
	prefix string
	span
}

// matches reports whether the target span t meets the bound, with FHIR's
// meaning of the prefixes for ranges: ge and gt ask that part of t lies at
// or after the value's start (or past its end), lt and le that part of t lies
// before the value's start (or its end), eq that t lies within the value.
func (b bound) matches(t span) bool {
	switch b.prefix {
	case "ge":
		return t.hi.After(b.lo)
	case "gt":
		return t.hi.After(b.hi)
	case "lt":
		return t.lo.Before(b.lo)
	case "le":
		return t.lo.Before(b.hi)
	default: // eq
		return !t.lo.Before(b.lo) && !t.hi.After(b.hi)
	}
}

// criteria are the date parameters of one search that the simulator applies.
type criteria struct {
	lastUpdated []bound
	date        []bound
	// missing is "true" or "false" for date:missing, empty when absent.
	missing string
}

// parseCriteria reads the date parameters of a search that mode applies;
// the others are ignored, as servers ignore parameters they do not know.
func parseCriteria(q url.Values, mode SearchParams) (criteria, error) {
	var c criteria
	lastUpdated, date, missing := mode.applies()
	parse := func(name string) ([]bound, error) {
		var out []bound
		for _, v := range q[name] {
			prefix := "eq"
			if len(v) > 2 && v[0] >= 'a' && v[0] <= 'z' {
				prefix, v = v[:2], v[2:]
			}
			switch prefix {
			case "eq", "ge", "gt", "le", "lt":
			default:
				return nil, fmt.Errorf("%s: the prefix %q is not supported", name, prefix)
			}
			s, ok := parseSpan(v)
			if !ok {
				return nil, fmt.Errorf("%s: %q is not a FHIR date", name, v)
			}
			out = append(out, bound{prefix, s})
		}
		return out, nil
	}
	var err error
	if lastUpdated {
		if c.lastUpdated, err = parse("_lastUpdated"); err != nil {
			return c, err
		}
	}
	if date {
		if c.date, err = parse("date"); err != nil {
			return c, err
		}
	}
	if missing {
		switch v := q.Get("date:missing"); v {
		case "", "true", "false":
			c.missing = v
		default:
			return c, fmt.Errorf("date:missing must be true or false")
		}
	}
	return c, nil
}

// empty reports whether the criteria select every result.
func (c criteria) empty() bool {
	return len(c.lastUpdated) == 0 && len(c.date) == 0 && c.missing == ""
}

// obsTimes are the times of one observation that searches compare.
type obsTimes struct {
	// updated is meta.lastUpdated; updatedText is how it is sent.
	updated     time.Time
	updatedText string
	// effective is the span of effective[x]; dated is false without one.
	effective span
	dated     bool
}

// timesOf reads an observation's times. Its meta.lastUpdated is the one set
// on it, else when it was issued, else when it was collected.
func timesOf(o *observation) obsTimes {
	var t obsTimes
	if o.EffectiveDateTime != "" {
		t.effective, t.dated = parseSpan(o.EffectiveDateTime)
	}
	switch {
	case o.Meta != nil:
		s, _ := parseSpan(o.Meta.LastUpdated)
		t.updated = s.lo
	case o.Issued != "":
		s, _ := parseSpan(o.Issued)
		t.updated = s.lo
	default:
		t.updated = t.effective.lo
	}
	t.updatedText = t.updated.UTC().Format(time.RFC3339)
	return t
}

// matches reports whether an observation with times t meets every criterion.
func (c criteria) matches(t obsTimes) bool {
	switch c.missing {
	case "true":
		if t.dated {
			return false
		}
	case "false":
		if !t.dated {
			return false
		}
	}
	for _, b := range c.lastUpdated {
		if !b.matches(span{t.updated, t.updated.Add(time.Nanosecond)}) {
			return false
		}
	}
	for _, b := range c.date {
		if !t.dated || !b.matches(t.effective) {
			return false
		}
	}
	return true
}

// meta is a resource's meta element.
type meta struct {
	LastUpdated string `json:"lastUpdated"`
}

// timesFor returns the times of obs, the shared slice of a patient's
// observations, index for index; they are computed once per slice.
func (s *Sim) timesFor(patient string, obs []observation) []obsTimes {
	if len(obs) == 0 {
		return nil
	}
	s.mu.Lock()
	c, ok := s.times[patient]
	s.mu.Unlock()
	if ok && c.of == &obs[0] && len(c.times) == len(obs) {
		return c.times
	}
	ts := make([]obsTimes, len(obs))
	for i := range obs {
		ts[i] = timesOf(&obs[i])
	}
	s.mu.Lock()
	s.times[patient] = cachedTimes{of: &obs[0], times: ts}
	s.mu.Unlock()
	return ts
}

// cachedTimes are the times of one patient's observation slice.
type cachedTimes struct {
	of    *observation
	times []obsTimes
}

// selection is the part of a patient's observations a search returns, with
// their times. It names the selected observations by their place in the
// patient's shared slice, so that the searches of a sliced search, each kept
// for searchLifetime, do not hold a copy of the record between them.
type selection struct {
	obs   []observation
	times []obsTimes
	// all is set when the search selects every observation; idx are
	// otherwise the places in obs of the selected ones, in order.
	all bool
	idx []int32
}

// len is how many observations the search returns.
func (sel *selection) len() int {
	if sel.all {
		return len(sel.obs)
	}
	return len(sel.idx)
}

// at returns the search's i-th observation (a copy) and its times.
func (sel *selection) at(i int) (observation, obsTimes) {
	if !sel.all {
		i = int(sel.idx[i])
	}
	return sel.obs[i], sel.times[i]
}

// selectFor applies the search's criteria to obs, once per search.
func (s *Sim) selectFor(sr *search, obs []observation) *selection {
	sr.once.Do(func() {
		ts := s.timesFor(sr.patient, obs)
		sr.sel = selection{obs: obs, times: ts, all: sr.criteria.empty()}
		if sr.sel.all {
			return
		}
		for i := range obs {
			if sr.criteria.matches(ts[i]) {
				sr.sel.idx = append(sr.sel.idx, int32(i))
			}
		}
	})
	return &sr.sel
}
