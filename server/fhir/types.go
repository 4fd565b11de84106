package fhir

import "time"

// Patient is the part of a FHIR Patient the app shows.
type Patient struct {
	// ID is the logical id; it always equals the id that was asked for.
	ID string
	// Name is "Family, Given Middle" from the official name, else the first name.
	Name string
	// BirthDate is as sent, e.g. 1975-03-02.
	BirthDate string
	// Gender is the administrative gender code as sent, e.g. female.
	Gender string
	// MRN is the value of the identifier typed MR, empty when absent.
	MRN string
}

// Coding is one code from a code system.
type Coding struct {
	System, Code, Display string
}

// Concept is a CodeableConcept.
type Concept struct {
	Text    string
	Codings []Coding
}

// Quantity is a measured amount.
type Quantity struct {
	// Value is the number; ValueText is the number exactly as sent (e.g. "5.40").
	// ValueText is empty when the quantity has no value.
	Value     float64
	ValueText string
	// Unrepresentable is true when ValueText is a number that no float64
	// holds: beyond its range (1e400) or so small that it would round to 0
	// (1e-400). Value is then 0: show ValueText as sent, never compute with it.
	Unrepresentable bool
	// Comparator is "<", "<=", ">=", ">" or empty.
	Comparator string
	Unit       string
	Code       string
	System     string
}

// ValueKind says which value[x] an Observation or component carries.
type ValueKind int

// Value kinds.
const (
	ValueNone ValueKind = iota
	ValueQuantity
	ValueString
	ValueCodeable
)

// Value is an Observation's or component's value[x]; only the field named by Kind is set.
type Value struct {
	Kind     ValueKind
	Quantity Quantity
	String   string
	Concept  Concept
}

// Range is a reference range.
type Range struct {
	// Low and High are nil when that side is open.
	Low, High *Quantity
	// Text is the range as text, as sent.
	Text string
	// Type is what the range means (normal, recommended, therapeutic, ...); nil when absent.
	Type *Concept
	// AppliesTo are the populations the range is meant for (e.g. female);
	// when there are several, every one must hold.
	AppliesTo []Concept
	// AgeLow and AgeHigh bound the ages the range is meant for; nil when that
	// side is open or the range has no age.
	AgeLow, AgeHigh *Quantity
}

// Reference is a reference to another resource, with its display text.
type Reference struct {
	// Reference is e.g. ServiceRequest/123; empty when only a display was sent.
	Reference string
	// Display is the text the server gave for the target, e.g. "BASIC METABOLIC PANEL".
	Display string
}

// Component is one part of a multi-component Observation.
type Component struct {
	Code           Concept
	Value          Value
	Absent         *Concept
	Ranges         []Range
	Interpretation []Concept
}

// Observation is the part of a FHIR Observation the app uses.
type Observation struct {
	ID, Status string
	Code       Concept
	// LOINC is the code of the http://loinc.org coding, if any.
	LOINC string
	// Subject is the subject reference, e.g. Patient/123.
	Subject string
	// Effective is effectiveDateTime, effectiveInstant or effectivePeriod.start; zero when absent.
	Effective time.Time
	// EffectiveDateOnly is true when Effective was sent as a date without a time of day;
	// it is then midnight UTC and must not be converted to another zone.
	EffectiveDateOnly bool
	// Issued is when the result was released; zero when absent.
	Issued         time.Time
	Value          Value
	Absent         *Concept
	Components     []Component
	Ranges         []Range
	Interpretation []Concept
	// HasMember and DerivedFrom are references, kept for panels.
	HasMember, DerivedFrom []string
	// BasedOn are the orders (ServiceRequest) the result fulfils.
	BasedOn []Reference
	// Notes are the texts of Observation.note, as sent.
	Notes []string
	// Specimen is the specimen the result was measured on; zero when absent.
	Specimen Reference
	// Performers are who produced the result (the performing lab among them).
	Performers []Reference
}

// Outcome is the meaning of one OperationOutcome issue, in plain words.
type Outcome struct {
	// Code is the EHR's issue code (e.g. Epic's 4101), or the FHIR issue type when there is none.
	Code string
	// Level is "info", "warning" or "error".
	Level string
	// Message is plain words for a clinician; it never repeats the EHR's diagnostics text.
	Message string
	// Incomplete is true when this outcome means the result list may be missing results.
	Incomplete bool
}

// Outcome levels.
const (
	LevelInfo    = "info"
	LevelWarning = "warning"
	LevelError   = "error"
)

// LabsResult is the outcome of one laboratory Observation search.
type LabsResult struct {
	// Observations are the results gathered, entered-in-error ones left out.
	Observations []Observation
	// Outcomes are the meanings of the OperationOutcomes the EHR sent.
	Outcomes []Outcome
	// Incomplete is true when the list is not complete: a page failed or the EHR said so.
	Incomplete bool
	// Err is the fault that stopped the search, nil when every page arrived.
	// It is always a *Error.
	Err error
	// Pages is how many pages arrived in the search that produced Observations.
	Pages int
	// SlicedBy is the parameter the search was sliced on (_lastUpdated or
	// date), empty when its pages were fetched one after another.
	SlicedBy string
	// Windows is how many windows of the sliced search were started.
	Windows int
	// FellBack is true when the EHR ignored the slicing parameter, so the
	// search was fetched again page after page: Observations come from that.
	FellBack bool
}
