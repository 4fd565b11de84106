package labsview

import (
	"strings"
	"time"

	"smartlabs/components/labs"
	"smartlabs/server/fhir"
)

// Computed flags. Epic often sends no interpretation at all, even for a value
// outside its reference range; a clinician must not take silence for normal.
// When the lab sent none, a flag is computed from the one reference range
// that applies, under rules strict enough never to flag wrongly: a plain
// number (no comparator) against a range meant as normal, for this patient's
// sex and age at collection, in the same UCUM unit. Any doubt (no such range,
// or several) gives no flag. A flag the lab sent, N included, always wins.

// Code systems a computed flag reads.
const (
	ucumSystem         = "http://unitsofmeasure.org"
	rangeMeaningSystem = "http://terminology.hl7.org/CodeSystem/referencerange-meaning"
	snomedSystem       = "http://snomed.info/sct"
	genderSystem       = "http://hl7.org/fhir/administrative-gender"
	v3GenderSystem     = "http://terminology.hl7.org/CodeSystem/v3-AdministrativeGender"
)

// Subject is what a reference range may depend on: the patient's sex and
// birth date.
type Subject struct {
	// Sex is the administrative gender as sent (female, male, other,
	// unknown); "" when unknown.
	Sex string
	// Birth is the birth date at midnight UTC; zero when unknown or not a full date.
	Birth time.Time
}

// SubjectOf gives the Subject of a Patient; nil gives the zero Subject, for
// which only ranges without appliesTo and age apply.
func SubjectOf(p *fhir.Patient) Subject {
	if p == nil {
		return Subject{}
	}
	s := Subject{Sex: p.Gender}
	if len(p.BirthDate) == len(dateLayout) {
		if t, err := time.Parse(dateLayout, p.BirthDate); err == nil {
			s.Birth = t
		}
	}
	return s
}

// refRange is one reference range as a computed flag needs it.
type refRange struct {
	// low and high are the bounds that a float64 holds, when hasLow and
	// hasHigh; they also bound the chart's band.
	low, high       float64
	hasLow, hasHigh bool
	// unitsMatch is true when every bound's UCUM code is the value's.
	unitsMatch bool
	// sexes are the sexes appliesTo names ("female", "male"); unknown is
	// true when appliesTo names anything else, which the range then cannot be matched on.
	sexes   []string
	unknown bool
	// ageLow and ageHigh bound the age at collection; nil when open.
	ageLow, ageHigh *ageBound
	// index is the range's place among the Observation's ranges; text is
	// the range as shown, e.g. "3.5–5.1" (set only for ranges kept for ForSubject).
	index int
	text  string
}

// ageBound is one end of a range's age: a count of whole units.
type ageBound struct {
	n    float64
	unit string // UCUM: a, mo, wk, d, h, min
}

// fits reports whether the range is meant for subj at time at.
func (rr *refRange) fits(subj Subject, at time.Time) bool {
	if rr.unknown {
		return false
	}
	for _, sex := range rr.sexes {
		if sex != subj.Sex {
			return false
		}
	}
	if b := rr.ageLow; b != nil {
		if age, ok := ageIn(b.unit, subj.Birth, at); !ok || age < b.n {
			return false
		}
	}
	if b := rr.ageHigh; b != nil {
		if age, ok := ageIn(b.unit, subj.Birth, at); !ok || age > b.n {
			return false
		}
	}
	return true
}

// flagFor compares v with the range: High above it, Low below it, none
// within (its bounds included) or when the range cannot be used.
func (rr *refRange) flagFor(v float64) labs.Flag {
	switch {
	case !rr.usable():
		return labs.FlagNone
	case rr.hasHigh && v > rr.high:
		return labs.FlagHigh
	case rr.hasLow && v < rr.low:
		return labs.FlagLow
	}
	return labs.FlagNone
}

// hintFor says that a flag was computed, and from which range (text as
// rangeText shows it): "outside 3.5–5.1", "below 60", "above 200".
func hintFor(rr *refRange, text string) string {
	switch {
	case rr.hasLow && rr.hasHigh:
		return "outside " + text
	case rr.hasLow:
		return "below " + strings.TrimPrefix(text, "≥ ")
	default:
		return "above " + strings.TrimPrefix(text, "≤ ")
	}
}

// bounds are the range's bounds as the chart's band takes them.
func (rr *refRange) bounds() (low, high *float64) {
	if rr.hasLow {
		v := rr.low
		low = &v
	}
	if rr.hasHigh {
		v := rr.high
		high = &v
	}
	return low, high
}

// ageIn is the age in whole units (UCUM a, mo, wk, d, h, min) at time at of
// someone born on birth; ok is false when either is unknown or the unit is not one of those.
func ageIn(unit string, birth, at time.Time) (float64, bool) {
	if birth.IsZero() || at.IsZero() {
		return 0, false
	}
	// Calendar dates, so an age changes on the birthday wherever the lab is.
	ay, am, ad := at.Date()
	by, bm, bd := birth.Date()
	months := (ay-by)*12 + int(am-bm)
	if ad < bd {
		months--
	}
	days := time.Date(ay, am, ad, 0, 0, 0, 0, time.UTC).Sub(time.Date(by, bm, bd, 0, 0, 0, 0, time.UTC)).Hours() / 24
	switch unit {
	case "a":
		return float64(floorDiv(months, 12)), true
	case "mo":
		return float64(months), true
	case "wk":
		return float64(floorDiv(int(days), 7)), true
	case "d":
		return days, true
	case "h":
		return float64(int64(at.Sub(birth).Hours())), true
	case "min":
		return float64(int64(at.Sub(birth).Minutes())), true
	}
	return 0, false
}

// floorDiv is a divided by b, rounded down.
func floorDiv(a, b int) int {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// isNormalType reports whether a range's type says it is the normal range;
// a range without a type is taken as normal.
func isNormalType(c *fhir.Concept) bool {
	if c == nil {
		return true
	}
	for _, cd := range c.Codings {
		if cd.Code == "normal" && (cd.System == rangeMeaningSystem || cd.System == "") {
			return true
		}
	}
	return len(c.Codings) == 0 && strings.EqualFold(strings.TrimSpace(c.Text), "normal")
}

// sexOf is the sex a concept of appliesTo names: "female", "male", or ""
// when it names something else.
func sexOf(c fhir.Concept) string {
	for _, cd := range c.Codings {
		switch {
		case cd.System == snomedSystem && cd.Code == "248152002",
			cd.System == genderSystem && cd.Code == "female",
			cd.System == v3GenderSystem && cd.Code == "F":
			return "female"
		case cd.System == snomedSystem && cd.Code == "248153007",
			cd.System == genderSystem && cd.Code == "male",
			cd.System == v3GenderSystem && cd.Code == "M":
			return "male"
		}
	}
	if len(c.Codings) == 0 {
		switch strings.ToLower(strings.TrimSpace(c.Text)) {
		case "female":
			return "female"
		case "male":
			return "male"
		}
	}
	return ""
}

// ucumCode is a quantity's UCUM code, or "" when it has none.
func ucumCode(q *fhir.Quantity) string {
	if q == nil || q.System != ucumSystem {
		return ""
	}
	return q.Code
}

// ageBoundOf reads one end of a range's age; ok is false when the end is
// there but cannot be read (no number, or not a UCUM time unit).
func ageBoundOf(q *fhir.Quantity) (b *ageBound, ok bool) {
	if q == nil {
		return nil, true
	}
	n, has := number(q)
	if !has || q.Comparator != "" || q.System != ucumSystem && q.System != "" {
		return nil, false
	}
	switch q.Code {
	case "a", "mo", "wk", "d", "h", "min":
		return &ageBound{n: n, unit: q.Code}, true
	}
	return nil, false
}

// refRangeOf reads range i of ranges, for a value whose UCUM code is unit
// ("" when the value cannot be compared); ok is false for a range not meant
// as normal. Bounds with a comparator or beyond float range cannot be
// compared with, so such a range never flags.
func refRangeOf(ranges []fhir.Range, i int, unit string) (rr refRange, ok bool) {
	r := &ranges[i]
	if !isNormalType(r.Type) {
		return refRange{}, false
	}
	rr = refRange{index: i, unitsMatch: unit != ""}
	for _, q := range []*fhir.Quantity{r.Low, r.High} {
		if q == nil {
			continue
		}
		v, ok := number(q)
		if !ok || q.Comparator != "" || ucumCode(q) != unit {
			rr.unitsMatch = false
		}
		if !ok {
			continue
		}
		if q == r.Low {
			rr.low, rr.hasLow = v, true
		} else {
			rr.high, rr.hasHigh = v, true
		}
	}
	for _, c := range r.AppliesTo {
		if sex := sexOf(c); sex != "" {
			rr.sexes = append(rr.sexes, sex)
		} else {
			rr.unknown = true
		}
	}
	var okLow, okHigh bool
	rr.ageLow, okLow = ageBoundOf(r.AgeLow)
	rr.ageHigh, okHigh = ageBoundOf(r.AgeHigh)
	if !okLow || !okHigh {
		rr.unknown = true
	}
	return rr, true
}

// refRangesOf reads every range meant as normal, with its text, to be
// picked for the patient later (ForSubject).
func refRangesOf(ranges []fhir.Range, unit string) []refRange {
	var out []refRange
	for i := range ranges {
		if rr, ok := refRangeOf(ranges, i, unit); ok {
			rr.text = rangeText(ranges[i : i+1])
			out = append(out, rr)
		}
	}
	return out
}

// usable reports whether a value in the value's unit can be compared with
// the range: every bound in that UCUM unit, at least one bound, low <= high.
func (rr *refRange) usable() bool {
	return rr.unitsMatch && (rr.hasLow || rr.hasHigh) && (!rr.hasLow || !rr.hasHigh || rr.low <= rr.high)
}

// pick returns the one range of rs that fits subj at time at (and, with
// comparable, can be compared with the value), or nil when none does or
// several do.
func pick(rs []refRange, subj Subject, at time.Time, comparable bool) *refRange {
	var found *refRange
	for i := range rs {
		if comparable && !rs[i].usable() || !rs[i].fits(subj, at) {
			continue
		}
		if found != nil {
			return nil
		}
		found = &rs[i]
	}
	return found
}

// computedFlag fills r's flag from its kept ranges when the lab sent none,
// and shows the range meant for subj.
func computedFlag(r *Result, subj Subject) {
	var rr *refRange
	if r.computable {
		if rr = pick(r.ranges, subj, r.At, true); rr != nil {
			if r.Row.Flag = rr.flagFor(r.Num); r.Row.Flag != labs.FlagNone {
				r.Row.FlagText, r.Row.FlagHint = flagWords[r.Row.Flag], hintFor(rr, rr.text)
			}
		}
	}
	if rr == nil {
		rr = pick(r.ranges, subj, r.At, false)
	}
	if rr != nil {
		// The range meant for this patient is the one shown, and the one charted.
		r.Row.Range = rr.text
		r.Low, r.High = rr.bounds()
	}
}

// staticFlag computes r's flag from o's ranges when none depends on the
// patient: the same rules as computedFlag, without keeping the ranges. It
// allocates only for a flag's hint, or when the range picked is not the
// first (which the row already shows).
func staticFlag(r *Result, o *fhir.Observation, unit string) {
	var found refRange
	n := 0
	for i := range o.Ranges {
		rr, ok := refRangeOf(o.Ranges, i, unit)
		if !ok || !rr.usable() {
			continue
		}
		if n++; n > 1 {
			return
		}
		found = rr
	}
	if n != 1 {
		return
	}
	if found.index != 0 {
		r.Row.Range = rangeText(o.Ranges[found.index : found.index+1])
		r.Low, r.High = found.bounds()
	}
	if r.Row.Flag = found.flagFor(r.Num); r.Row.Flag != labs.FlagNone {
		r.Row.FlagText = flagWords[r.Row.Flag]
		r.Row.FlagHint = hintFor(&found, rangeText(o.Ranges[found.index:found.index+1]))
	}
}

// ForSubject gives rs with the flags and ranges that depend on the patient's
// sex and age filled in for subj. It returns rs itself when no result
// depends on them; otherwise a copy, so the cached results stay as they are.
func ForSubject(rs []Result, subj Subject) []Result {
	var out []Result
	for i := range rs {
		if !rs[i].bySubject {
			continue
		}
		if out == nil {
			out = make([]Result, len(rs))
			copy(out, rs)
		}
		computedFlag(&out[i], subj)
	}
	if out == nil {
		return rs
	}
	return out
}
