// Package labsview maps FHIR results to the labs view model. It is pure: no
// I/O, no clock. Text is kept as sent; escaping is the templates' job.
package labsview

import (
	"errors"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"smartlabs/components/labs"
	"smartlabs/server/fhir"
)

// loincSystem is the LOINC code system URI.
const loincSystem = "http://loinc.org"

// Time layouts of the Collected column: unambiguous, zone-independent digits.
const (
	collectedLayout = "2006-01-02 15:04"
	dateLayout      = "2006-01-02"
)

// Banner maps a Patient to the patient banner; nil gives nil.
func Banner(p *fhir.Patient) *labs.Banner {
	if p == nil {
		return nil
	}
	return &labs.Banner{
		Name:      p.Name,
		BirthDate: birthDate(p.BirthDate),
		Sex:       genderWords(p.Gender),
		MRN:       p.MRN,
	}
}

// birthDate gives YYYY-MM-DD for a full FHIR date and the text as sent otherwise
// (FHIR allows YYYY and YYYY-MM).
func birthDate(s string) string {
	if len(s) >= len(dateLayout) {
		if t, err := time.Parse(dateLayout, s[:len(dateLayout)]); err == nil {
			return t.Format(dateLayout)
		}
	}
	return s
}

// genderWords gives the administrative gender in words.
func genderWords(g string) string {
	switch g {
	case "female":
		return "Female"
	case "male":
		return "Male"
	case "other":
		return "Other"
	case "unknown":
		return "Unknown"
	default:
		return capitalize(g)
	}
}

// Rows maps Observations to result rows, newest first by collection time, then
// by name; results without a time come last. Entered-in-error results are left out.
func Rows(obs []fhir.Observation, loc *time.Location) []labs.Row {
	if loc == nil {
		loc = time.UTC
	}
	type keyed struct {
		row labs.Row
		at  time.Time
	}
	list := make([]keyed, 0, len(obs))
	for i := range obs {
		o := &obs[i]
		// Entered-in-error results must never be shown, even if a caller forgot to drop them.
		if o.Status == "entered-in-error" {
			continue
		}
		list = append(list, keyed{row: row(o, loc), at: o.Effective})
	}
	slices.SortStableFunc(list, func(a, b keyed) int {
		switch {
		case a.at.IsZero() != b.at.IsZero():
			if a.at.IsZero() {
				return 1
			}
			return -1
		case !a.at.Equal(b.at):
			return b.at.Compare(a.at)
		default:
			return strings.Compare(a.row.Name, b.row.Name)
		}
	})
	rows := make([]labs.Row, len(list))
	for i, k := range list {
		rows[i] = k.row
	}
	return rows
}

// row maps one Observation.
func row(o *fhir.Observation, loc *time.Location) labs.Row {
	r := labs.Row{
		ID:         o.ID,
		Name:       conceptName(o.Code),
		Range:      rangeText(o.Ranges),
		Status:     o.Status,
		StatusNote: statusNote(o.Status),
	}
	r.Value, r.Unit = valueText(o.Value)
	if o.Absent != nil {
		r.Absent = absentWords(o.Absent)
		r.Value, r.Unit = "", ""
	}
	r.Flag, r.FlagText = flag(o.Interpretation)
	r.Collected, r.CollectedISO = collected(o, loc)
	r.Notes = o.Notes
	r.Specimen = o.Specimen.Display
	r.Performer = performerName(o.Performers)
	for i := range o.Components {
		r.Components = append(r.Components, component(&o.Components[i]))
	}
	return r
}

// component maps one component like a row.
func component(c *fhir.Component) labs.Component {
	out := labs.Component{Name: conceptName(c.Code), Range: rangeText(c.Ranges)}
	out.Value, out.Unit = valueText(c.Value)
	if c.Absent != nil {
		out.Absent = absentWords(c.Absent)
		out.Value, out.Unit = "", ""
	}
	out.Flag, out.FlagText = flag(c.Interpretation)
	return out
}

// conceptName is the text, else the first coding's display, else the first code.
func conceptName(c fhir.Concept) string {
	if c.Text != "" {
		return c.Text
	}
	for _, cd := range c.Codings {
		if cd.Display != "" {
			return cd.Display
		}
	}
	for _, cd := range c.Codings {
		if cd.Code != "" {
			return cd.Code
		}
	}
	return ""
}

// valueText gives a value and its unit as text.
func valueText(v fhir.Value) (value, unit string) {
	switch v.Kind {
	case fhir.ValueQuantity:
		q := v.Quantity
		unit = q.Unit
		if unit == "" {
			unit = q.Code
		}
		if n := numberText(&q); n != "" {
			value = q.Comparator + n
		}
		return value, unit
	case fhir.ValueString:
		return v.String, ""
	case fhir.ValueCodeable:
		return conceptName(v.Concept), ""
	default:
		return "", ""
	}
}

// numberText is the number as sent, or formatted when no text was kept: plain
// digits from 1e-6 up to 1e15, scientific notation beyond, never NaN or Inf.
func numberText(q *fhir.Quantity) string {
	if q.ValueText != "" {
		return q.ValueText
	}
	v := q.Value
	switch a := math.Abs(v); {
	case v == 0 || math.IsNaN(v) || math.IsInf(v, 0):
		return ""
	case a < 1e-6 || a >= 1e15:
		return strconv.FormatFloat(v, 'g', -1, 64)
	default:
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
}

// absentWords is the data-absent reason in words.
func absentWords(c *fhir.Concept) string {
	if c.Text != "" {
		return c.Text
	}
	for _, cd := range c.Codings {
		if cd.Display != "" {
			return cd.Display
		}
	}
	for _, cd := range c.Codings {
		if w, ok := absentCodes[cd.Code]; ok {
			return w
		}
		if cd.Code != "" {
			return capitalize(strings.ReplaceAll(cd.Code, "-", " "))
		}
	}
	return "No value"
}

// absentCodes are the words of the FHIR data-absent-reason codes.
var absentCodes = map[string]string{
	"unknown":           "Unknown",
	"asked-unknown":     "Asked but unknown",
	"temp-unknown":      "Temporarily unknown",
	"not-asked":         "Not asked",
	"asked-declined":    "Asked but declined",
	"masked":            "Masked",
	"not-applicable":    "Not applicable",
	"unsupported":       "Unsupported",
	"as-text":           "See text",
	"error":             "Error",
	"not-a-number":      "Not a number",
	"negative-infinity": "Negative infinity",
	"positive-infinity": "Positive infinity",
	"not-performed":     "Not performed",
	"not-permitted":     "Not permitted",
}

// rangeText gives the first reference range as text: "3.5–5.1", "≥ 40", "≤ 200",
// or the range's text as sent when it has no numeric bound. Units are left out.
func rangeText(ranges []fhir.Range) string {
	if len(ranges) == 0 {
		return ""
	}
	r := ranges[0]
	var low, high string
	if r.Low != nil {
		low = numberText(r.Low)
	}
	if r.High != nil {
		high = numberText(r.High)
	}
	switch {
	case low != "" && high != "":
		return low + "–" + high
	case low != "":
		return "≥ " + low
	case high != "":
		return "≤ " + high
	default:
		return r.Text
	}
}

// flagWords are the interpretation flags shown and their words.
var flagWords = map[labs.Flag]string{
	labs.FlagHigh:          "High",
	labs.FlagLow:           "Low",
	labs.FlagCriticalHigh:  "Critical high",
	labs.FlagCriticalLow:   "Critical low",
	labs.FlagAbnormal:      "Abnormal",
	labs.FlagCriticalOther: "Critical abnormal",
}

// flag gives the first known interpretation code; N and unknown codes give no flag.
func flag(interp []fhir.Concept) (labs.Flag, string) {
	for _, c := range interp {
		for _, cd := range c.Codings {
			f := labs.Flag(cd.Code)
			if words, ok := flagWords[f]; ok {
				return f, words
			}
		}
	}
	return labs.FlagNone, ""
}

// collected formats the collection time in loc, and its RFC 3339 form. A date
// sent without a time of day is shown as that date, unconverted.
func collected(o *fhir.Observation, loc *time.Location) (text, iso string) {
	return collectedAt(o.Effective, o.EffectiveDateOnly, loc)
}

// performerName is the display of the performing lab: the first performer
// that is an Organization, else the first with a display.
func performerName(refs []fhir.Reference) string {
	for _, r := range refs {
		if strings.HasPrefix(r.Reference, "Organization/") && r.Display != "" {
			return r.Display
		}
	}
	for _, r := range refs {
		if r.Display != "" {
			return r.Display
		}
	}
	return ""
}

// statusNote is the visible marker of a non-final status.
func statusNote(status string) string {
	switch status {
	case "", "final":
		return ""
	case "preliminary":
		return "Preliminary"
	case "corrected":
		return "Corrected"
	case "amended":
		return "Amended"
	case "cancelled":
		return "Cancelled"
	case "registered":
		return "Registered"
	case "unknown":
		return "Status unknown"
	default:
		return capitalize(strings.ReplaceAll(status, "-", " "))
	}
}

// capitalize upper-cases the first letter of an ASCII word.
func capitalize(s string) string {
	if s == "" {
		return s
	}
	if c := s[0]; c >= 'a' && c <= 'z' {
		return string(c-'a'+'A') + s[1:]
	}
	return s
}

// incompleteReason is why a page failed, in words that follow "This list is incomplete: ".
var incompleteReason = map[fhir.ErrorKind]string{
	fhir.KindUnauthorized: "the EHR no longer accepts this app's access. Open the app again from the patient's chart.",
	fhir.KindForbidden:    "the EHR refused access to some results.",
	fhir.KindNotFound:     "the EHR could not find part of the results.",
	fhir.KindUpstream:     "the EHR had a problem sending every page of results. Refresh to try again.",
	fhir.KindTimeout:      "the EHR did not answer in time. Refresh to try again.",
	fhir.KindMalformed:    "the EHR sent a page of results the app could not read. Refresh to try again.",
	fhir.KindRequest:      "the EHR did not accept the request for more results. Refresh to try again.",
}

// Notices gives the plain-words notices of a search: first why the list is
// incomplete, if it is, then the meaning of each OperationOutcome.
func Notices(res *fhir.LabsResult) []labs.Notice {
	if res == nil {
		return nil
	}
	var fe *fhir.Error
	hasErr := errors.As(res.Err, &fe)
	if hasErr && fe.Kind == fhir.KindWrongPatient {
		// Nothing is shown for a wrong-patient answer, so this is not an "incomplete list".
		return []labs.Notice{{Level: labs.NoticeError, Text: fe.Public}}
	}

	var out []labs.Notice
	shown := map[fhir.Outcome]bool{}
	if res.Incomplete {
		var n labs.Notice
		switch {
		case hasErr:
			reason, ok := incompleteReason[fe.Kind]
			if !ok {
				reason = "some results could not be fetched. Refresh to try again."
			}
			n = labs.Notice{Level: labs.NoticeError, Text: "This list is incomplete: " + reason}
		case res.Err != nil:
			n = labs.Notice{Level: labs.NoticeError, Text: "This list is incomplete: some results could not be fetched. Refresh to try again."}
		default:
			n = labs.Notice{Level: labs.NoticeWarning, Text: "This list is incomplete: the EHR did not send every result."}
			for _, o := range res.Outcomes {
				if o.Incomplete {
					// The outcome's own words give the reason; it is not repeated below.
					n.Text = "This list is incomplete: " + o.Message
					shown[o] = true
					break
				}
			}
		}
		out = append(out, n)
	}
	for _, o := range res.Outcomes {
		if shown[o] {
			continue
		}
		shown[o] = true
		out = append(out, labs.Notice{Level: noticeLevel(o.Level), Text: o.Message})
	}
	return out
}

// noticeLevel maps an outcome level to a notice level.
func noticeLevel(level string) labs.NoticeLevel {
	switch level {
	case fhir.LevelError:
		return labs.NoticeError
	case fhir.LevelWarning:
		return labs.NoticeWarning
	default:
		return labs.NoticeInfo
	}
}
