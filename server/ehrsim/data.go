package ehrsim

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"time"
)

// FHIR code systems used by the synthetic data.
const (
	systemLOINC          = "http://loinc.org"
	systemUCUM           = "http://unitsofmeasure.org"
	systemSNOMED         = "http://snomed.info/sct"
	systemCategory       = "http://terminology.hl7.org/CodeSystem/observation-category"
	systemInterpretation = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
	systemAbsent         = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
	systemV20203         = "http://terminology.hl7.org/CodeSystem/v2-0203"
	systemMRN            = "urn:oid:1.2.840.114350.1.13.0.1.7.5.737384.14"
	systemEpicOutcome    = "urn:oid:1.2.840.114350.1.13.0.1.7.2.657369"
)

// newestDrawAge is how many days before the clock's day each patient's
// newest draw is: the period filters always find recent results, and no
// result is issued after the clock's time.
const newestDrawAge = 2

// anchorDay is the lab's calendar day at now, at midnight in labZone. Each
// patient's history ends relative to it, so the data follows the clock yet
// is the same for every clock reading on one day.
func anchorDay(now time.Time) time.Time {
	t := now.In(labZone)
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, labZone)
}

// labZone is the offset of the simulated lab's clock.
var labZone = time.FixedZone("", -5*60*60)

// patientSpec describes one synthetic patient.
type patientSpec struct {
	id, family, given, gender, birthDate, mrn string
	encounter, dstu2ID                        string
	results, years                            int
	seed                                      uint64
	outcome                                   string // Epic outcome code on page 1 besides 4101.
	xss                                       bool   // one lab name carries a script tag.
	edge                                      bool   // the edge-case numbers and dates of edgeTests.
	epic                                      bool   // the shapes of a production Epic system (epic.go).
	pending                                   int    // the newest results are orders not yet collected (see pending.go).
}

func (p *patientSpec) info() PatientInfo {
	return PatientInfo{
		ID: p.id, Name: p.family + ", " + p.given, Family: p.family, Given: p.given,
		Gender: p.gender, BirthDate: p.birthDate, MRN: p.mrn, ResultCount: p.results,
	}
}

// patientSpecs are the synthetic patients, in launchpad order.
var patientSpecs = []patientSpec{
	{id: "eAB3mDIBBcyUKviyzrxsnAw3", family: "Lin", given: "Alma", gender: "female", birthDate: "1962-03-14",
		mrn: "203713", encounter: "eGmO0h.1.UQQFEg8iLa3UVw3", dstu2ID: "TkAnPF4tdI6bU2ZkpRB8cTAB",
		results: 640, years: 8, seed: 11, outcome: "4119"},
	{id: "e0w0LEDCYtfckT6N.CkJKCw3", family: "Okafor", given: "Ben", gender: "male", birthDate: "1978-11-02",
		mrn: "203714", encounter: "eKQ8b2L9cS7o0Ywq2l1hQdw3", dstu2ID: "Tq1mVnsQ6FaJxL2GeoJ3qHQB",
		results: 380, years: 6, seed: 22, xss: true},
	{id: "eLgE.1ZfI5vH0jMk4xg9HBg3", family: "Large", given: "Test", gender: "female", birthDate: "1950-01-01",
		mrn: "203715", encounter: "eZ2rT0wXk9Q4s1mNc8bVaUw3", dstu2ID: "T7yHd2pJm0cKs9QfLxN3bWAB",
		results: 5000, years: 10, seed: 33},
	{id: "eNoLbs8Qm2xT7vW0pZk1rYw3", family: "Empty", given: "Nolabs", gender: "male", birthDate: "1990-07-21",
		mrn: "203716", encounter: "eP0nQ7s2Lw5kR9tY3mX1cBw3", dstu2ID: "TzL4kQ8sW2nP0xR7mY1vJcAB",
		results: 0, years: 5, seed: 44},
	{id: "eRd5aNa1Mx0QpW9sT3yLk2w3", family: "Reyes", given: "Dana", gender: "female", birthDate: "2001-05-30",
		encounter: "eV3mK8pQ1sT6wY0zL4nR7cw3", dstu2ID: "TbN6rT1yK8mQ3sW0pL5xZdAB",
		results: 260, years: 6, seed: 55},
	{id: "eEdg3NumB3rsXq7Lp0Zt9Vw3", family: "Edge", given: "Numbers", gender: "other", birthDate: "1980-02-29",
		mrn: "203717", encounter: "eEdg3Enc0unTr1Qm4Ks8Yaw3", dstu2ID: "TEdg3Du2Mx7Qp1Lz9Wc4NbAB",
		results: edgeResultCount, years: 1, seed: 66, edge: true},
	epicPatient,
	{id: "ePnd9UndAt3dQr7Lm2Xk4Sw3", family: "Pending", given: "Undated", gender: "female", birthDate: "1968-09-12",
		mrn: "203718", encounter: "ePnd9Enc0unTr7Kq2Lm5Xw3", dstu2ID: "TPnd9Du2Qm4Lx8Wr1Kc7NbAB",
		results: 240, years: 3, seed: 77, pending: pendingResults},
}

// rangeKind says how an analyte's reference range is expressed.
type rangeKind int

const (
	rangeBoth rangeKind = iota
	rangeHighOnly
	rangeLowOnly
	rangeText
)

// valueKind says which FHIR value shape an analyte's results take.
type valueKind int

const (
	kindQuantity valueKind = iota
	kindString
	kindCodeable
	kindComponents
)

// analyte is one lab test.
type analyte struct {
	loinc, name, unit string
	kind              valueKind
	rk                rangeKind
	low, high         float64
	text              string
	decimals          int
	components        []int // indexes into analytes, for kindComponents.
}

// center and spread of an analyte's normal values.
func (a *analyte) center() (c, sd float64) {
	switch a.rk {
	case rangeHighOnly, rangeText:
		return a.high * 0.7, a.high * 0.12
	case rangeLowOnly:
		return a.low * 1.4, a.low * 0.15
	}
	return (a.low + a.high) / 2, (a.high - a.low) / 5
}

// flag returns the v3 interpretation code for v, or "" when normal.
func (a *analyte) flag(v float64) string {
	switch a.rk {
	case rangeHighOnly, rangeText:
		switch {
		case v > a.high*2:
			return "HH"
		case v > a.high:
			return "H"
		}
	case rangeLowOnly:
		switch {
		case v < a.low*0.5:
			return "LL"
		case v < a.low:
			return "L"
		}
	default:
		w := a.high - a.low
		switch {
		case v > a.high+w:
			return "HH"
		case v > a.high:
			return "H"
		case v < a.low-w/2:
			return "LL"
		case v < a.low:
			return "L"
		}
	}
	return ""
}

func q(loinc, name, unit string, low, high float64, dec int) analyte {
	return analyte{loinc: loinc, name: name, unit: unit, rk: rangeBoth, low: low, high: high, decimals: dec}
}

func qHigh(loinc, name, unit string, high float64, dec int) analyte {
	return analyte{loinc: loinc, name: name, unit: unit, rk: rangeHighOnly, high: high, decimals: dec}
}

func qLow(loinc, name, unit string, low float64, dec int) analyte {
	return analyte{loinc: loinc, name: name, unit: unit, rk: rangeLowOnly, low: low, decimals: dec}
}

// analytes are the lab tests, with real LOINC codes and UCUM units.
var analytes = []analyte{
	/* 0 */ q("2345-7", "Glucose [Mass/volume] in Serum or Plasma", "mg/dL", 70, 99, 0),
	/* 1 */ q("2951-2", "Sodium [Moles/volume] in Serum or Plasma", "mmol/L", 136, 145, 0),
	/* 2 */ q("2823-3", "Potassium [Moles/volume] in Serum or Plasma", "mmol/L", 3.5, 5.1, 1),
	/* 3 */ q("2075-0", "Chloride [Moles/volume] in Serum or Plasma", "mmol/L", 98, 107, 0),
	/* 4 */ q("2028-9", "Carbon dioxide, total [Moles/volume] in Serum or Plasma", "mmol/L", 22, 29, 0),
	/* 5 */ q("3094-0", "Urea nitrogen [Mass/volume] in Serum or Plasma", "mg/dL", 7, 20, 0),
	/* 6 */ q("2160-0", "Creatinine [Mass/volume] in Serum or Plasma", "mg/dL", 0.6, 1.3, 2),
	/* 7 */ q("17861-6", "Calcium [Mass/volume] in Serum or Plasma", "mg/dL", 8.5, 10.5, 1),
	/* 8 */ qLow("33914-3", "Glomerular filtration rate/1.73 sq M.predicted", "mL/min/{1.73_m2}", 60, 0),
	/* 9 */ q("6690-2", "Leukocytes [#/volume] in Blood by Automated count", "10*3/uL", 4.5, 11.0, 1),
	/* 10 */ q("718-7", "Hemoglobin [Mass/volume] in Blood", "g/dL", 12.0, 17.5, 1),
	/* 11 */ q("4544-3", "Hematocrit [Volume Fraction] of Blood by Automated count", "%", 36, 50, 1),
	/* 12 */ q("777-3", "Platelets [#/volume] in Blood by Automated count", "10*3/uL", 150, 400, 0),
	/* 13 */ q("789-8", "Erythrocytes [#/volume] in Blood by Automated count", "10*6/uL", 4.2, 5.9, 2),
	/* 14 */ q("787-2", "MCV [Entitic volume] by Automated count", "fL", 80, 100, 1),
	/* 15 */ q("1742-6", "Alanine aminotransferase [Enzymatic activity/volume] in Serum or Plasma", "U/L", 7, 56, 0),
	/* 16 */ q("1920-8", "Aspartate aminotransferase [Enzymatic activity/volume] in Serum or Plasma", "U/L", 10, 40, 0),
	/* 17 */ q("6768-6", "Alkaline phosphatase [Enzymatic activity/volume] in Serum or Plasma", "U/L", 44, 147, 0),
	/* 18 */ q("1975-2", "Bilirubin.total [Mass/volume] in Serum or Plasma", "mg/dL", 0.1, 1.2, 1),
	/* 19 */ q("1751-7", "Albumin [Mass/volume] in Serum or Plasma", "g/dL", 3.5, 5.0, 1),
	/* 20 */ q("2885-2", "Protein [Mass/volume] in Serum or Plasma", "g/dL", 6.0, 8.3, 1),
	/* 21 */ qHigh("2093-3", "Cholesterol [Mass/volume] in Serum or Plasma", "mg/dL", 200, 0),
	/* 22 */ qLow("2085-9", "Cholesterol in HDL [Mass/volume] in Serum or Plasma", "mg/dL", 40, 0),
	/* 23 */ qHigh("13457-7", "Cholesterol in LDL [Mass/volume] in Serum or Plasma by calculation", "mg/dL", 100, 0),
	/* 24 */ {loinc: "2571-8", name: "Triglyceride [Mass/volume] in Serum or Plasma", unit: "mg/dL", rk: rangeText, high: 150, text: "<150"},
	/* 25 */ q("4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood", "%", 4.0, 5.6, 1),
	/* 26 */ q("3016-3", "Thyrotropin [Units/volume] in Serum or Plasma", "m[IU]/L", 0.4, 4.0, 2),
	/* 27 */ q("3024-7", "Thyroxine (T4) free [Mass/volume] in Serum or Plasma", "ng/dL", 0.8, 1.8, 2),
	/* 28 */ q("5902-2", "Prothrombin time (PT)", "s", 11.0, 13.5, 1),
	/* 29 */ q("6301-6", "INR in Platelet poor plasma by Coagulation assay", "{INR}", 0.8, 1.2, 1),
	/* 30 */ q("19123-9", "Magnesium [Mass/volume] in Serum or Plasma", "mg/dL", 1.7, 2.2, 1),
	/* 31 */ q("2777-1", "Phosphate [Mass/volume] in Serum or Plasma", "mg/dL", 2.5, 4.5, 1),
	/* 32 */ qHigh("1988-5", "C reactive protein [Mass/volume] in Serum or Plasma", "mg/L", 10, 1),
	/* 33 */ q("2276-4", "Ferritin [Mass/volume] in Serum or Plasma", "ng/mL", 30, 400, 0),
	/* 34 */ q("1989-3", "25-hydroxyvitamin D3 [Mass/volume] in Serum or Plasma", "ng/mL", 30, 100, 0),
	/* 35 */ qHigh("2857-1", "Prostate specific Ag [Mass/volume] in Serum or Plasma", "ng/mL", 4.0, 2),
	/* 36 */ q("2524-7", "Lactate [Moles/volume] in Serum or Plasma", "mmol/L", 0.5, 2.2, 1),
	/* 37 */ qHigh("10839-9", "Troponin I.cardiac [Mass/volume] in Serum or Plasma", "ng/mL", 0.04, 2),
	/* 38 */ {loinc: "5778-6", name: "Color of Urine", kind: kindString},
	/* 39 */ {loinc: "5767-9", name: "Appearance of Urine", kind: kindString},
	/* 40 */ {loinc: "630-4", name: "Bacteria identified in Urine by Culture", kind: kindCodeable},
	/* 41 */ q("2744-1", "pH of Arterial blood", "[pH]", 7.35, 7.45, 2),
	/* 42 */ q("2019-8", "Carbon dioxide [Partial pressure] in Arterial blood", "mm[Hg]", 35, 45, 0),
	/* 43 */ q("2703-7", "Oxygen [Partial pressure] in Arterial blood", "mm[Hg]", 80, 100, 0),
	/* 44 */ {loinc: "24336-0", name: "Gas panel - Arterial blood", kind: kindComponents, components: []int{41, 42, 43}},
}

// panel is a set of analytes drawn together.
type panel struct {
	weight   int
	analytes []int
}

var panels = []panel{
	{30, []int{0, 1, 2, 3, 4, 5, 6, 7, 8}}, // Basic metabolic panel.
	{25, []int{9, 10, 11, 12, 13, 14}},     // Complete blood count.
	{10, []int{15, 16, 17, 18, 19, 20}},    // Hepatic function panel.
	{8, []int{21, 22, 23, 24}},             // Lipid panel.
	{6, []int{25}},                         // HbA1c.
	{5, []int{26, 27}},                     // Thyroid.
	{4, []int{28, 29}},                     // Coagulation.
	{4, []int{30, 31}},                     // Magnesium and phosphate.
	{3, []int{32, 33, 34}},                 // Inflammation and iron.
	{2, []int{35}},                         // PSA.
	{2, []int{36, 37}},                     // Lactate and troponin.
	{5, []int{38, 39, 40}},                 // Urinalysis and culture.
	{2, []int{44}},                         // Arterial blood gas.
}

// FHIR data types, as far as the simulator needs them.
type (
	coding struct {
		System  string `json:"system,omitempty"`
		Code    string `json:"code,omitempty"`
		Display string `json:"display,omitempty"`
	}
	codeableConcept struct {
		Coding []coding `json:"coding,omitempty"`
		Text   string   `json:"text,omitempty"`
	}
	quantity struct {
		Value      json.Number `json:"value"`
		Comparator string      `json:"comparator,omitempty"`
		Unit       string      `json:"unit,omitempty"`
		System     string      `json:"system,omitempty"`
		Code       string      `json:"code,omitempty"`
	}
	referenceRange struct {
		Low       *quantity         `json:"low,omitempty"`
		High      *quantity         `json:"high,omitempty"`
		Type      *codeableConcept  `json:"type,omitempty"`
		AppliesTo []codeableConcept `json:"appliesTo,omitempty"`
		Age       *ageRange         `json:"age,omitempty"`
		Text      string            `json:"text,omitempty"`
	}
	ageRange struct {
		Low  *quantity `json:"low,omitempty"`
		High *quantity `json:"high,omitempty"`
	}
	annotation struct {
		Text string `json:"text"`
	}
	reference struct {
		Reference string `json:"reference"`
		Display   string `json:"display,omitempty"`
	}
	component struct {
		Code           codeableConcept   `json:"code"`
		ValueQuantity  *quantity         `json:"valueQuantity,omitempty"`
		Interpretation []codeableConcept `json:"interpretation,omitempty"`
		ReferenceRange []referenceRange  `json:"referenceRange,omitempty"`
	}
	observation struct {
		ResourceType         string            `json:"resourceType"`
		ID                   string            `json:"id"`
		Meta                 *meta             `json:"meta,omitempty"`
		Status               string            `json:"status"`
		Category             []codeableConcept `json:"category"`
		Code                 codeableConcept   `json:"code"`
		Subject              reference         `json:"subject"`
		EffectiveDateTime    string            `json:"effectiveDateTime,omitempty"`
		Issued               string            `json:"issued,omitempty"`
		ValueQuantity        *quantity         `json:"valueQuantity,omitempty"`
		ValueString          string            `json:"valueString,omitempty"`
		ValueCodeableConcept *codeableConcept  `json:"valueCodeableConcept,omitempty"`
		DataAbsentReason     *codeableConcept  `json:"dataAbsentReason,omitempty"`
		Interpretation       []codeableConcept `json:"interpretation,omitempty"`
		ReferenceRange       []referenceRange  `json:"referenceRange,omitempty"`
		Component            []component       `json:"component,omitempty"`
		BasedOn              []reference       `json:"basedOn,omitempty"`
		Specimen             *reference        `json:"specimen,omitempty"`
		Performer            []reference       `json:"performer,omitempty"`
		Note                 []annotation      `json:"note,omitempty"`
	}
)

// dataset holds the patients and lazily generated, cached observations.
type dataset struct {
	patients []*patientSpec
	byID     map[string]*patientSpec

	mu    sync.Mutex
	cache map[string]history
}

// history is one patient's observations as generated for one anchor day.
type history struct {
	day time.Time
	obs []observation
}

func newDataset() *dataset {
	d := &dataset{byID: map[string]*patientSpec{}, cache: map[string]history{}}
	for i := range patientSpecs {
		p := patientSpecs[i]
		d.patients = append(d.patients, &p)
		d.byID[p.id] = &p
	}
	return d
}

func (d *dataset) patient(id string) *patientSpec { return d.byID[id] }

// observations returns the patient's lab observations as of the clock time
// at, newest first. The slice is shared: callers must copy an element before
// changing it. Only the latest day's history is kept, so a long demo run
// moves its data along with the calendar.
func (d *dataset) observations(id string, at time.Time) []observation {
	day := anchorDay(at)
	d.mu.Lock()
	defer d.mu.Unlock()
	if h, ok := d.cache[id]; ok && h.day.Equal(day) {
		return h.obs
	}
	p := d.byID[id]
	if p == nil {
		return nil
	}
	obs := generate(p, day)
	d.cache[id] = history{day: day, obs: obs}
	return obs
}

// patientResource renders the FHIR Patient.
func (p *patientSpec) resource() map[string]any {
	res := map[string]any{
		"resourceType": "Patient",
		"id":           p.id,
		"active":       true,
		"name": []map[string]any{{
			"use": "official", "text": p.given + " " + p.family,
			"family": p.family, "given": []string{p.given},
		}},
		"gender":    p.gender,
		"birthDate": p.birthDate,
	}
	if p.mrn != "" {
		res["identifier"] = []map[string]any{{
			"use": "usual",
			"type": codeableConcept{
				Coding: []coding{{System: systemV20203, Code: "MR", Display: "Medical record number"}},
				Text:   "MRN",
			},
			"system": systemMRN,
			"value":  p.mrn,
		}}
	}
	return res
}

// walker keeps each analyte's drifting value for one patient.
type walker struct {
	r     *rand.Rand
	value map[int]float64
}

// next returns the analyte's next value: a drift toward normal plus noise, with
// an occasional abnormal spike.
func (w *walker) next(i int) float64 {
	a := &analytes[i]
	c, sd := a.center()
	v, ok := w.value[i]
	if !ok {
		v = c + w.r.NormFloat64()*sd
	}
	v += 0.35*(c-v) + w.r.NormFloat64()*sd*0.6
	w.value[i] = v
	out := v
	if w.r.IntN(100) < 7 {
		switch a.rk {
		case rangeLowOnly:
			out = a.low * (0.3 + 0.6*w.r.Float64())
		case rangeHighOnly, rangeText:
			out = a.high * (1.05 + 1.4*w.r.Float64())
		default:
			width := a.high - a.low
			if w.r.IntN(2) == 0 {
				out = a.high + width*(0.05+1.4*w.r.Float64())
			} else {
				out = a.low - width*(0.05+0.7*w.r.Float64())
			}
		}
	}
	floor := math.Pow(10, -float64(a.decimals))
	if a.rk == rangeBoth && a.low > 0 {
		floor = math.Max(floor, a.low*0.2)
	}
	return math.Max(out, floor)
}

func num(v float64, dec int) json.Number {
	return json.Number(strconv.FormatFloat(v, 'f', dec, 64))
}

func interp(code string) []codeableConcept {
	if code == "" {
		return nil
	}
	display := map[string]string{"H": "High", "L": "Low", "HH": "Critical high", "LL": "Critical low", "A": "Abnormal"}[code]
	return []codeableConcept{{Coding: []coding{{System: systemInterpretation, Code: code, Display: display}}, Text: display}}
}

func (a *analyte) qty(v float64) *quantity {
	return &quantity{Value: num(v, a.decimals), Unit: a.unit, System: systemUCUM, Code: a.unit}
}

func (a *analyte) refRange() []referenceRange {
	switch a.rk {
	case rangeBoth:
		return []referenceRange{{Low: a.qty(a.low), High: a.qty(a.high),
			Text: string(num(a.low, a.decimals)) + " - " + string(num(a.high, a.decimals)) + " " + a.unit}}
	case rangeHighOnly:
		return []referenceRange{{High: a.qty(a.high), Text: "<" + string(num(a.high, a.decimals)) + " " + a.unit}}
	case rangeLowOnly:
		return []referenceRange{{Low: a.qty(a.low), Text: ">=" + string(num(a.low, a.decimals)) + " " + a.unit}}
	case rangeText:
		return []referenceRange{{Text: a.text}}
	}
	return nil
}

// shortNames are the lab's own component names, which Epic sends as code.text.
var shortNames = map[string]string{
	"2345-7": "Glucose", "2951-2": "Sodium", "2823-3": "Potassium", "2075-0": "Chloride",
	"2028-9": "CO2", "3094-0": "BUN", "2160-0": "Creatinine", "17861-6": "Calcium",
	"33914-3": "eGFR", "6690-2": "WBC", "718-7": "Hemoglobin", "4544-3": "Hematocrit",
	"777-3": "Platelets", "789-8": "RBC", "787-2": "MCV", "1742-6": "ALT", "1920-8": "AST",
	"6768-6": "Alkaline Phosphatase", "1975-2": "Bilirubin, Total", "1751-7": "Albumin",
	"2885-2": "Protein, Total", "2093-3": "Cholesterol", "2085-9": "HDL Cholesterol",
	"13457-7": "LDL Cholesterol (calc)", "2571-8": "Triglycerides", "4548-4": "Hemoglobin A1c",
	"3016-3": "TSH", "3024-7": "Free T4", "5902-2": "Prothrombin Time", "6301-6": "INR",
	"19123-9": "Magnesium", "2777-1": "Phosphorus", "1988-5": "C-Reactive Protein",
	"2276-4": "Ferritin", "1989-3": "Vitamin D, 25-Hydroxy", "2857-1": "PSA", "2524-7": "Lactate",
	"10839-9": "Troponin I", "5778-6": "Urine Color", "5767-9": "Urine Appearance",
	"630-4": "Urine Culture", "2744-1": "pH, Arterial", "2019-8": "pCO2, Arterial",
	"2703-7": "pO2, Arterial", "24336-0": "Blood Gas, Arterial",
}

func (a *analyte) code() codeableConcept {
	text := shortNames[a.loinc]
	if text == "" {
		text = a.name
	}
	return codeableConcept{Coding: []coding{{System: systemLOINC, Code: a.loinc, Display: a.name}}, Text: text}
}

// observationID derives a stable, opaque, Epic-like id.
func observationID(patientID string, seq int) string {
	sum := sha256.Sum256([]byte(patientID + "/" + strconv.Itoa(seq)))
	return "e" + base64.RawURLEncoding.EncodeToString(sum[:21]) + "3"
}

// generate builds the patient's observations deterministically for the
// anchor day, newest first. The edge-case patient's dates are absolute.
func generate(p *patientSpec, anchor time.Time) []observation {
	if p.edge {
		return generateEdge(p)
	}
	if p.epic {
		obs, _ := generateEpic(p, anchor)
		return obs
	}
	if p.results == 0 {
		return []observation{}
	}
	r := rand.New(rand.NewPCG(p.seed, p.seed*0x9e3779b97f4a7c15+1))
	totalWeight := 0
	for _, pn := range panels {
		totalWeight += pn.weight
	}
	var draws [][]int
	for n := 0; n < p.results; {
		pick := r.IntN(totalWeight)
		var as []int
		for _, pn := range panels {
			if pick < pn.weight {
				as = pn.analytes
				break
			}
			pick -= pn.weight
		}
		// The oldest draws are a blood gas and a urinalysis, so every patient has every result shape.
		switch len(draws) {
		case 0:
			as = []int{44}
		case 1:
			as = []int{38, 39, 40}
		}
		if n+len(as) > p.results {
			as = as[:p.results-n]
		}
		draws = append(draws, as)
		n += len(as)
	}

	span := time.Duration(p.years) * 365 * 24 * time.Hour
	start := anchor.Add(-span)
	gap := span / time.Duration(len(draws))
	w := &walker{r: r, value: map[int]float64{}}
	obs := make([]observation, 0, p.results)
	seq := 0
	for i, as := range draws {
		t := start.Add(gap*time.Duration(i) + gap/2 + time.Duration((r.Float64()-0.5)*0.8*float64(gap))).In(labZone)
		t = time.Date(t.Year(), t.Month(), t.Day(), 6+r.IntN(12), r.IntN(60), 0, 0, labZone)
		issued := t.Add(time.Duration(60+r.IntN(600)) * time.Minute).UTC()
		for _, ai := range as {
			o := observation{
				ResourceType: "Observation",
				ID:           observationID(p.id, seq),
				Status:       "final",
				Category: []codeableConcept{{
					Coding: []coding{{System: systemCategory, Code: "laboratory", Display: "Laboratory"}},
					Text:   "Laboratory",
				}},
				Code:              analytes[ai].code(),
				Subject:           reference{Reference: "Patient/" + p.id, Display: p.given + " " + p.family},
				EffectiveDateTime: t.Format(time.RFC3339),
				Issued:            issued.Format(time.RFC3339),
			}
			fillValue(&o, ai, w)
			if i == 1 && ai == 40 {
				// The first urine culture grows bacteria, so every patient has an "A" flag.
				positiveCulture(&o)
			}
			obs = append(obs, o)
			seq++
		}
	}
	endHistory(obs, anchor.AddDate(0, 0, -newestDrawAge))
	applyStatuses(obs, r)

	// Newest first, as Epic returns search results; ties keep generation order reversed.
	slices.Reverse(obs)
	slices.SortStableFunc(obs, func(a, b observation) int {
		ta, _ := time.Parse(time.RFC3339, a.EffectiveDateTime)
		tb, _ := time.Parse(time.RFC3339, b.EffectiveDateTime)
		return tb.Compare(ta)
	})
	if p.xss {
		for i := range obs {
			if obs[i].Code.Coding[0].Code == "2823-3" {
				name := "Potassium <script>alert(1)</script>"
				obs[i].Code = codeableConcept{Coding: []coding{{System: systemLOINC, Code: "2823-3", Display: name}}, Text: name}
				break
			}
		}
	}
	undate(obs[:min(p.pending, len(obs))])
	return obs
}

// endHistory moves every date of obs (oldest first) by whole days, so the
// newest draw falls on the lab day of end; times of day stay as generated.
func endHistory(obs []observation, end time.Time) {
	newest, _ := time.Parse(time.RFC3339, obs[len(obs)-1].EffectiveDateTime)
	days := int(end.Sub(anchorDay(newest)).Round(time.Hour) / (24 * time.Hour))
	for i := range obs {
		obs[i].EffectiveDateTime = addDays(obs[i].EffectiveDateTime, days)
		obs[i].Issued = addDays(obs[i].Issued, days)
	}
}

// addDays moves an RFC 3339 time written by generate by whole days, keeping its offset.
func addDays(s string, days int) string {
	t, _ := time.Parse(time.RFC3339, s)
	return t.AddDate(0, 0, days).Format(time.RFC3339)
}

// fillValue sets the value, interpretation and range of one result.
func fillValue(o *observation, ai int, w *walker) {
	a := &analytes[ai]
	switch a.kind {
	case kindQuantity:
		v := w.next(ai)
		o.ValueQuantity = a.qty(v)
		o.Interpretation = interp(a.flag(v))
		o.ReferenceRange = a.refRange()
	case kindString:
		choices := map[string][]string{
			"5778-6": {"Yellow", "Yellow", "Yellow", "Straw", "Straw", "Amber", "Red"},
			"5767-9": {"Clear", "Clear", "Clear", "Clear", "Slightly cloudy", "Cloudy"},
		}[a.loinc]
		v := choices[w.r.IntN(len(choices))]
		o.ValueString = v
		if v == "Red" || v == "Cloudy" || v == "Amber" {
			o.Interpretation = interp("A")
		}
		if a.loinc == "5778-6" {
			o.ReferenceRange = []referenceRange{{Text: "Yellow"}}
		} else {
			o.ReferenceRange = []referenceRange{{Text: "Clear"}}
		}
	case kindCodeable:
		if w.r.IntN(100) < 15 {
			positiveCulture(o)
		} else {
			o.ValueCodeableConcept = &codeableConcept{Coding: []coding{{System: systemSNOMED, Code: "260385009", Display: "Negative"}}, Text: "Negative"}
		}
	case kindComponents:
		worst := ""
		for _, ci := range a.components {
			ca := &analytes[ci]
			v := w.next(ci)
			f := ca.flag(v)
			if f != "" {
				worst = "A"
			}
			o.Component = append(o.Component, component{
				Code: ca.code(), ValueQuantity: ca.qty(v), Interpretation: interp(f), ReferenceRange: ca.refRange(),
			})
		}
		o.Interpretation = interp(worst)
	}
}

func positiveCulture(o *observation) {
	o.ValueCodeableConcept = &codeableConcept{Coding: []coding{{System: systemSNOMED, Code: "10828004", Display: "Positive"}}, Text: "Positive"}
	o.Interpretation = interp("A")
}

var notPerformed = &codeableConcept{
	Coding: []coding{{System: systemAbsent, Code: "not-performed", Display: "Not Performed"}},
	Text:   "Not performed",
}

// applyStatuses sprinkles preliminary, corrected, entered-in-error and
// not-performed results over the history (obs is oldest first).
func applyStatuses(obs []observation, r *rand.Rand) {
	n := len(obs)
	for i := range obs {
		o := &obs[i]
		switch roll := r.IntN(1000); {
		case roll < 5:
			o.Status = "entered-in-error"
		case roll < 25:
			o.Status = "corrected"
		case roll < 35:
			o.Status = "preliminary"
		case roll < 45 && o.ValueQuantity != nil:
			absent(o)
		}
	}
	// Guarantee every shape on every patient with some history, at fixed spots.
	if n < 20 {
		return
	}
	obs[n/7].Status = "entered-in-error"
	obs[n/3].Status = "entered-in-error"
	obs[n/2].Status = "corrected"
	obs[n-n/4].Status = "corrected"
	for i := n / 5; i < n; i++ {
		if obs[i].ValueQuantity != nil {
			absent(&obs[i])
			break
		}
	}
	// The newest draw is still being resulted.
	last := obs[n-1].EffectiveDateTime
	for i := n - 1; i >= 0 && obs[i].EffectiveDateTime == last; i-- {
		if obs[i].Status == "final" {
			obs[i].Status = "preliminary"
		}
	}
}

func absent(o *observation) {
	o.ValueQuantity = nil
	o.Interpretation = nil
	o.DataAbsentReason = notPerformed
}
