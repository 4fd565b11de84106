package fhir

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/go-json-experiment/json/jsontext"
)

// The wire types below hold only the fields the app uses; unknown fields are ignored.

type wireCoding struct {
	System  string `json:"system"`
	Code    string `json:"code"`
	Display string `json:"display"`
}

type wireConcept struct {
	Text   string       `json:"text"`
	Coding []wireCoding `json:"coding"`
}

type wireReference struct {
	Reference string `json:"reference"`
	Display   string `json:"display"`
}

type wireAnnotation struct {
	Text string `json:"text"`
}

// wireNumber is a JSON number kept exactly as sent (e.g. "5.40"); null gives "".
type wireNumber string

// errNotNumber is returned when a quantity's value is not a JSON number.
var errNotNumber = errors.New("value is not a number")

// UnmarshalJSONFrom reads a number token and keeps its text.
func (n *wireNumber) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	v, err := dec.ReadValue()
	if err != nil {
		return err
	}
	switch v.Kind() {
	case 'n':
		return nil
	case '0':
		*n = wireNumber(v)
		return nil
	default:
		return errNotNumber
	}
}

type wireQuantity struct {
	Value      wireNumber `json:"value"`
	Comparator string     `json:"comparator"`
	Unit       string     `json:"unit"`
	Code       string     `json:"code"`
	System     string     `json:"system"`
}

type wireRange struct {
	Low       *wireQuantity `json:"low"`
	High      *wireQuantity `json:"high"`
	Text      string        `json:"text"`
	Type      *wireConcept  `json:"type"`
	AppliesTo []wireConcept `json:"appliesTo"`
	Age       *wireAgeRange `json:"age"`
}

// wireAgeRange is referenceRange.age: a Range of ages.
type wireAgeRange struct {
	Low  *wireQuantity `json:"low"`
	High *wireQuantity `json:"high"`
}

// wireValue is the value[x] choice shared by Observation and its components.
type wireValue struct {
	ValueQuantity        *wireQuantity `json:"valueQuantity"`
	ValueString          *string       `json:"valueString"`
	ValueCodeableConcept *wireConcept  `json:"valueCodeableConcept"`
}

type wireComponent struct {
	wireValue
	Code             wireConcept   `json:"code"`
	DataAbsentReason *wireConcept  `json:"dataAbsentReason"`
	ReferenceRange   []wireRange   `json:"referenceRange"`
	Interpretation   []wireConcept `json:"interpretation"`
}

type wireObservation struct {
	wireValue
	ResourceType      string           `json:"resourceType"`
	ID                string           `json:"id"`
	Status            string           `json:"status"`
	Code              wireConcept      `json:"code"`
	Subject           wireReference    `json:"subject"`
	EffectiveDateTime string           `json:"effectiveDateTime"`
	EffectiveInstant  string           `json:"effectiveInstant"`
	EffectivePeriod   *wirePeriod      `json:"effectivePeriod"`
	Meta              *wireMeta        `json:"meta"`
	Issued            string           `json:"issued"`
	DataAbsentReason  *wireConcept     `json:"dataAbsentReason"`
	ReferenceRange    []wireRange      `json:"referenceRange"`
	Interpretation    []wireConcept    `json:"interpretation"`
	Component         []wireComponent  `json:"component"`
	HasMember         []wireReference  `json:"hasMember"`
	DerivedFrom       []wireReference  `json:"derivedFrom"`
	BasedOn           []wireReference  `json:"basedOn"`
	Note              []wireAnnotation `json:"note"`
	Specimen          *wireReference   `json:"specimen"`
	Performer         []wireReference  `json:"performer"`
}

type wirePeriod struct {
	Start string `json:"start"`
	End   string `json:"end"`
}

type wireMeta struct {
	LastUpdated string `json:"lastUpdated"`
}

type wireHumanName struct {
	Use    string   `json:"use"`
	Text   string   `json:"text"`
	Family string   `json:"family"`
	Given  []string `json:"given"`
}

type wireIdentifier struct {
	Type  wireConcept `json:"type"`
	Value string      `json:"value"`
}

type wirePatient struct {
	ResourceType string           `json:"resourceType"`
	ID           string           `json:"id"`
	Name         []wireHumanName  `json:"name"`
	BirthDate    string           `json:"birthDate"`
	Gender       string           `json:"gender"`
	Identifier   []wireIdentifier `json:"identifier"`
}

type wireIssue struct {
	Severity string      `json:"severity"`
	Code     string      `json:"code"`
	Details  wireConcept `json:"details"`
}

type wireOperationOutcome struct {
	ResourceType string      `json:"resourceType"`
	Issue        []wireIssue `json:"issue"`
}

type wireLink struct {
	Relation string `json:"relation"`
	URL      string `json:"url"`
}

// wireResource is a Bundle entry's resource: the union of the fields of the
// resource types a search returns (Observation, OperationOutcome), so that
// each entry is parsed once; ResourceType says which fields count.
type wireResource struct {
	wireObservation
	Issue []wireIssue `json:"issue"`
}

type wireEntry struct {
	Resource *wireResource `json:"resource"`
}

type wireBundle struct {
	ResourceType string      `json:"resourceType"`
	Total        *int        `json:"total"`
	Link         []wireLink  `json:"link"`
	Entry        []wireEntry `json:"entry"`
}

// wireEntryRaw keeps an entry's resource unparsed, for the slow path.
type wireEntryRaw struct {
	Resource jsontext.Value `json:"resource"`
}

type wireBundleRaw struct {
	ResourceType string         `json:"resourceType"`
	Total        *int           `json:"total"`
	Link         []wireLink     `json:"link"`
	Entry        []wireEntryRaw `json:"entry"`
}

// resourceHead is decoded first to learn an entry's type.
type resourceHead struct {
	ResourceType string `json:"resourceType"`
}

// loincSystem is the LOINC code system URI.
const loincSystem = "http://loinc.org"

// toConcept converts a wire CodeableConcept.
func toConcept(w wireConcept) Concept {
	c := Concept{Text: w.Text}
	if len(w.Coding) > 0 {
		c.Codings = make([]Coding, len(w.Coding))
		for i, cd := range w.Coding {
			c.Codings[i] = Coding{System: cd.System, Code: cd.Code, Display: cd.Display}
		}
	}
	return c
}

func toConceptPtr(w *wireConcept) *Concept {
	if w == nil {
		return nil
	}
	c := toConcept(*w)
	return &c
}

func toConcepts(ws []wireConcept) []Concept {
	if len(ws) == 0 {
		return nil
	}
	out := make([]Concept, len(ws))
	for i, w := range ws {
		out[i] = toConcept(w)
	}
	return out
}

func toQuantity(w *wireQuantity) *Quantity {
	if w == nil {
		return nil
	}
	q := &Quantity{
		ValueText:  string(w.Value),
		Comparator: w.Comparator,
		Unit:       w.Unit,
		Code:       w.Code,
		System:     w.System,
	}
	if q.ValueText != "" {
		q.Value, q.Unrepresentable = ParseDecimal(q.ValueText)
	}
	return q
}

// ParseDecimal reads a FHIR decimal (a JSON number's text) as the decoders
// do. A number beyond float64 range, where ParseFloat gives ±Inf, one so
// small that it rounds to 0 while its digits are not all zero, or text that
// is not a number gives 0 and unrepresentable: the caller keeps the text to
// show as sent.
func ParseDecimal(text string) (v float64, unrepresentable bool) {
	v, err := strconv.ParseFloat(text, 64)
	if err != nil || math.IsInf(v, 0) || math.IsNaN(v) {
		return 0, true
	}
	if v == 0 {
		mant, _, _ := strings.Cut(strings.ToLower(text), "e")
		if strings.ContainsAny(mant, "123456789") {
			return 0, true
		}
	}
	return v, false
}

func toRanges(ws []wireRange) []Range {
	if len(ws) == 0 {
		return nil
	}
	out := make([]Range, len(ws))
	for i, w := range ws {
		out[i] = Range{Low: toQuantity(w.Low), High: toQuantity(w.High), Text: w.Text,
			Type: toConceptPtr(w.Type), AppliesTo: toConcepts(w.AppliesTo)}
		if w.Age != nil {
			out[i].AgeLow, out[i].AgeHigh = toQuantity(w.Age.Low), toQuantity(w.Age.High)
		}
	}
	return out
}

func toValue(w wireValue) Value {
	switch {
	case w.ValueQuantity != nil:
		return Value{Kind: ValueQuantity, Quantity: *toQuantity(w.ValueQuantity)}
	case w.ValueString != nil:
		return Value{Kind: ValueString, String: *w.ValueString}
	case w.ValueCodeableConcept != nil:
		return Value{Kind: ValueCodeable, Concept: toConcept(*w.ValueCodeableConcept)}
	default:
		return Value{}
	}
}

// toReferences converts wire References, keeping their display text.
func toReferences(ws []wireReference) []Reference {
	if len(ws) == 0 {
		return nil
	}
	out := make([]Reference, len(ws))
	for i, w := range ws {
		out[i] = toReference(w)
	}
	return out
}

// toReference converts one wire Reference, keeping its display text.
func toReference(w wireReference) Reference {
	return Reference{Reference: w.Reference, Display: w.Display}
}

// toNotes keeps the texts of annotations; empty ones are left out.
func toNotes(ws []wireAnnotation) []string {
	var out []string
	for _, w := range ws {
		if w.Text != "" {
			out = append(out, w.Text)
		}
	}
	return out
}

func toRefs(ws []wireReference) []string {
	if len(ws) == 0 {
		return nil
	}
	out := make([]string, len(ws))
	for i, w := range ws {
		out[i] = w.Reference
	}
	return out
}

// parseDateTime parses a FHIR dateTime or instant. Partial dates (YYYY, YYYY-MM,
// YYYY-MM-DD) give midnight UTC and dateOnly=true; anything unreadable gives the zero time.
func parseDateTime(s string) (t time.Time, dateOnly bool) {
	if s == "" {
		return time.Time{}, false
	}
	if strings.Contains(s, "T") {
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			return t, false
		}
		return time.Time{}, false
	}
	for _, layout := range []string{time.DateOnly, "2006-01", "2006"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// toObservation converts a wire Observation.
func toObservation(w *wireObservation) Observation {
	o := Observation{
		ID:             w.ID,
		Status:         w.Status,
		Code:           toConcept(w.Code),
		Subject:        w.Subject.Reference,
		Value:          toValue(w.wireValue),
		Absent:         toConceptPtr(w.DataAbsentReason),
		Ranges:         toRanges(w.ReferenceRange),
		Interpretation: toConcepts(w.Interpretation),
		HasMember:      toRefs(w.HasMember),
		DerivedFrom:    toRefs(w.DerivedFrom),
		BasedOn:        toReferences(w.BasedOn),
		Notes:          toNotes(w.Note),
		Performers:     toReferences(w.Performer),
	}
	if w.Specimen != nil {
		o.Specimen = toReference(*w.Specimen)
	}
	for _, c := range w.Code.Coding {
		if c.System == loincSystem {
			o.LOINC = c.Code
			break
		}
	}
	switch {
	case w.EffectiveDateTime != "":
		o.Effective, o.EffectiveDateOnly = parseDateTime(w.EffectiveDateTime)
	case w.EffectiveInstant != "":
		o.Effective, o.EffectiveDateOnly = parseDateTime(w.EffectiveInstant)
	case w.EffectivePeriod != nil:
		o.Effective, o.EffectiveDateOnly = parseDateTime(w.EffectivePeriod.Start)
	}
	o.Issued, _ = parseDateTime(w.Issued)
	if len(w.Component) > 0 {
		o.Components = make([]Component, len(w.Component))
		for i, c := range w.Component {
			o.Components[i] = Component{
				Code:           toConcept(c.Code),
				Value:          toValue(c.wireValue),
				Absent:         toConceptPtr(c.DataAbsentReason),
				Ranges:         toRanges(c.ReferenceRange),
				Interpretation: toConcepts(c.Interpretation),
			}
		}
	}
	return o
}

// decodeObservation decodes one Observation resource.
func decodeObservation(raw []byte) (Observation, error) {
	var w wireObservation
	if err := unmarshal(raw, &w); err != nil {
		return Observation{}, err
	}
	return toObservation(&w), nil
}

// toPatient converts a wire Patient.
func toPatient(w *wirePatient) *Patient {
	p := &Patient{ID: w.ID, BirthDate: w.BirthDate, Gender: w.Gender}
	if n := pickName(w.Name); n != nil {
		p.Name = formatName(n)
	}
	for _, id := range w.Identifier {
		if hasCode(id.Type, "MR") && id.Value != "" {
			p.MRN = id.Value
			break
		}
	}
	return p
}

// pickName prefers the official name, then the usual one, then the first.
func pickName(names []wireHumanName) *wireHumanName {
	if len(names) == 0 {
		return nil
	}
	for _, use := range []string{"official", "usual"} {
		for i := range names {
			if names[i].Use == use {
				return &names[i]
			}
		}
	}
	return &names[0]
}

// formatName gives "Family, Given Middle", falling back to the name's text.
func formatName(n *wireHumanName) string {
	given := strings.TrimSpace(strings.Join(n.Given, " "))
	family := strings.TrimSpace(n.Family)
	switch {
	case family != "" && given != "":
		return family + ", " + given
	case family != "":
		return family
	case given != "":
		return given
	default:
		return strings.TrimSpace(n.Text)
	}
}

// hasCode reports whether any coding of c has code.
func hasCode(c wireConcept, code string) bool {
	for _, cd := range c.Coding {
		if cd.Code == code {
			return true
		}
	}
	return false
}

// knownOutcome is the plain meaning of an Epic OperationOutcome code.
type knownOutcome struct {
	level      string
	message    string
	incomplete bool
}

// epicOutcomes maps Epic's OperationOutcome codes to their meaning.
var epicOutcomes = map[string]knownOutcome{
	"4101":  {LevelInfo, "The EHR has no lab results for this patient.", false},
	"4119":  {LevelWarning, "The EHR says more data may exist than it returned.", false},
	"4130":  {LevelWarning, "Part of this patient's record is restricted. Break-the-glass access in the EHR is needed to see every result.", true},
	"4131":  {LevelWarning, "Part of this patient's record is restricted. Break-the-glass access in the EHR is needed to see every result.", true},
	"59204": {LevelError, "This app's registration in the EHR does not include access to lab results. Ask your EHR administrators to enable it.", false},
}

// genericOutcome is the message for an issue code we do not know, by level.
// The EHR's own diagnostics and details text are never shown: they may hold patient data.
var genericOutcome = map[string]string{
	LevelInfo:    "The EHR sent a note about this search.",
	LevelWarning: "The EHR sent a warning about this search.",
	LevelError:   "The EHR reported a problem with this search.",
}

// severityLevel maps an issue severity to an outcome level.
func severityLevel(severity string) string {
	switch severity {
	case "fatal", "error":
		return LevelError
	case "warning":
		return LevelWarning
	default:
		return LevelInfo
	}
}

// issueCodes lists the detail codes of an issue.
func issueCodes(is wireIssue) []string {
	var codes []string
	for _, c := range is.Details.Coding {
		if c.Code != "" {
			codes = append(codes, c.Code)
		}
	}
	return codes
}

// toOutcomes gives the meaning of each issue of an OperationOutcome.
func toOutcomes(oo *wireOperationOutcome) []Outcome {
	var out []Outcome
	for _, is := range oo.Issue {
		codes := issueCodes(is)
		o, found := Outcome{}, false
		for _, code := range codes {
			if k, ok := epicOutcomes[code]; ok {
				o = Outcome{Code: code, Level: k.level, Message: k.message, Incomplete: k.incomplete}
				found = true
				break
			}
		}
		if !found {
			level := severityLevel(is.Severity)
			o = Outcome{Code: is.Code, Level: level, Message: genericOutcome[level]}
			if len(codes) > 0 {
				o.Code = codes[0]
			}
		}
		out = append(out, o)
	}
	return out
}

// outcomeCodes lists every detail code of an OperationOutcome.
func outcomeCodes(oo *wireOperationOutcome) []string {
	var codes []string
	for _, is := range oo.Issue {
		codes = append(codes, issueCodes(is)...)
	}
	return codes
}
