package ehrsim

import (
	"encoding/json"
	"strconv"
	"time"
)

// The "Moreau, Celia" patient sends lab results shaped as a production Epic
// system sends them, unlike the tidy shapes of the other patients: no
// interpretation on most results (out-of-range ones included), panels linked
// only through DiagnosticReport.result and each result's basedOn order,
// notes, Epic's own component codes (one test has no LOINC code at all),
// values with a comparator (">60"), text-only ranges ("NR"), ranges by sex
// and by age, specimen and performer references with display text, and an
// issued time apart from the collection time. The data is synthetic: the
// shapes follow a published Epic export, the values and names are made up.

// systemEpicComponent is the component code system of the simulated
// organisation: Epic's 1.2.840.114350.1.13.<org>.<env>.7.2.768282, whose
// middle segments differ per organisation.
const systemEpicComponent = "urn:oid:1.2.840.114350.1.13.501.2.7.2.768282"

// Code systems of the Epic shapes.
const (
	systemRangeMeaning = "http://terminology.hl7.org/CodeSystem/referencerange-meaning"
	systemV20074       = "http://terminology.hl7.org/CodeSystem/v2-0074"
)

// epicPatient is the patient with Epic's shapes.
var epicPatient = patientSpec{
	id: "eMor3auC3liaEp1cSh4pe5w3", family: "Moreau", given: "Celia", gender: "female", birthDate: "1968-04-09",
	mrn: "203718", encounter: "eMor3Enc0unTr7Qm4Ks8Yaw3", dstu2ID: "TMor3Du2Mx7Qp1Lz9Wc4NbAB",
	results: epicResultCount, years: 1, seed: 77, epic: true,
}

// epicResultCount is how many results epicDraws hold.
const epicResultCount = 57

// Sexes and ages a range may be meant for.
var (
	forFemale = []codeableConcept{{Coding: []coding{{System: systemSNOMED, Code: "248152002", Display: "Female"}}, Text: "Female"}}
	forMale   = []codeableConcept{{Coding: []coding{{System: systemSNOMED, Code: "248153007", Display: "Male"}}, Text: "Male"}}
	normalTyp = &codeableConcept{Coding: []coding{{System: systemRangeMeaning, Code: "normal", Display: "Normal Range"}}, Text: "Normal Range"}
)

// epicTest is one test as the simulated organisation defines it.
type epicTest struct {
	name, component, loinc, unit string
	// ranges builds the test's reference ranges.
	ranges func(unit string) []referenceRange
}

// between is a low–high normal range in unit, optionally for a sex and ages.
func between(low, high string, sex []codeableConcept, age *ageRange) func(string) []referenceRange {
	return func(unit string) []referenceRange {
		return []referenceRange{epicRange(low, high, unit, sex, age)}
	}
}

// epicRange is one range as Epic sends it: UCUM bounds, type normal, text.
func epicRange(low, high, unit string, sex []codeableConcept, age *ageRange) referenceRange {
	rr := referenceRange{Type: normalTyp, AppliesTo: sex, Age: age}
	if low != "" {
		rr.Low = &quantity{Value: json.Number(low), Unit: unit, System: systemUCUM, Code: unit}
	}
	if high != "" {
		rr.High = &quantity{Value: json.Number(high), Unit: unit, System: systemUCUM, Code: unit}
	}
	switch {
	case low != "" && high != "":
		rr.Text = low + " - " + high + " " + unit
	case low != "":
		rr.Text = ">=" + low + " " + unit
	default:
		rr.Text = "<=" + high + " " + unit
	}
	return rr
}

// ageYears is an age range in years; "" leaves a side open.
func ageYears(low, high string) *ageRange {
	a := &ageRange{}
	if low != "" {
		a.Low = &quantity{Value: json.Number(low), Unit: "years", System: systemUCUM, Code: "a"}
	}
	if high != "" {
		a.High = &quantity{Value: json.Number(high), Unit: "years", System: systemUCUM, Code: "a"}
	}
	return a
}

// bySex gives a male and a female range, the male one first.
func bySex(maleLow, maleHigh, femaleLow, femaleHigh string) func(string) []referenceRange {
	return func(unit string) []referenceRange {
		return []referenceRange{
			epicRange(maleLow, maleHigh, unit, forMale, nil),
			epicRange(femaleLow, femaleHigh, unit, forFemale, nil),
		}
	}
}

// textRange is a range given only as text.
func textRange(text string) func(string) []referenceRange {
	return func(string) []referenceRange { return []referenceRange{{Text: text}} }
}

// epicTests are the tests of the simulated organisation, by short name.
var epicTests = map[string]epicTest{
	"na":  {"Sodium", "1526", "2951-2", "mmol/L", between("136", "145", nil, nil)},
	"k":   {"Potassium", "1520", "2823-3", "mmol/L", between("3.5", "5.1", nil, nil)},
	"cl":  {"Chloride", "1523", "2075-0", "mmol/L", between("98", "107", nil, nil)},
	"co2": {"CO2", "1529", "2028-9", "mmol/L", between("22", "29", nil, nil)},
	"bun": {"BUN", "1532", "3094-0", "mg/dL", between("7", "20", nil, nil)},
	"cr":  {"Creatinine", "1535", "2160-0", "mg/dL", bySex("0.74", "1.35", "0.59", "1.04")},
	"glu": {"Glucose", "1538", "2345-7", "mg/dL", between("70", "99", nil, nil)},
	"ca": {"Calcium", "1541", "17861-6", "mg/dL", func(u string) []referenceRange {
		return []referenceRange{epicRange("8.8", "10.8", u, nil, ageYears("", "17")), epicRange("8.6", "10.3", u, nil, ageYears("18", ""))}
	}},
	"egfr": {"eGFR", "1544", "98979-8", "mL/min/{1.73_m2}", between("60", "", nil, nil)},
	"gap":  {"Anion Gap", "1547", "", "mmol/L", between("5", "15", nil, nil)},
	"wbc":  {"WBC", "2101", "6690-2", "10*3/uL", between("4.0", "10.5", nil, nil)},
	"hgb":  {"Hemoglobin", "2104", "718-7", "g/dL", bySex("13.0", "17.0", "11.5", "15.5")},
	"hct":  {"Hematocrit", "2107", "4544-3", "%", bySex("38.0", "50.0", "34.0", "46.0")},
	"plt":  {"Platelets", "2110", "777-3", "10*3/uL", between("150", "400", nil, nil)},
	"mcv":  {"MCV", "2113", "787-2", "fL", between("80", "100", nil, nil)},
	"chol": {"Cholesterol", "3201", "2093-3", "mg/dL", between("", "199", nil, nil)},
	"hdl":  {"HDL Cholesterol", "3204", "2085-9", "mg/dL", between("40", "", nil, nil)},
	"ldl":  {"LDL Cholesterol (calc)", "3207", "13457-7", "mg/dL", between("", "99", nil, nil)},
	"tg":   {"Triglycerides", "3210", "2571-8", "mg/dL", between("", "149", nil, nil)},
	"a1c":  {"Hemoglobin A1c", "4301", "4548-4", "%", between("4.0", "5.6", nil, nil)},
	"hiv":  {"HIV 1/2 Ag/Ab Screen", "4401", "75622-1", "", textRange("NR")},
}

// epicResult is one result of a draw: the test, its value as sent (a
// leading ">" is a comparator; a value that is not a number is a string),
// the lab's interpretation code if it sent one, and a note.
type epicResult struct {
	test, value, interp, note string
}

// epicPanel is one order of a draw, with its report when the lab files one.
type epicPanel struct {
	order      string // the order's display, and the report's name
	report     bool   // a DiagnosticReport brings its results together
	status     string // the report's status
	conclusion string
	lab        string // the performing lab's display
	results    []epicResult
}

// epicDraw is one collection: how many days before the data's end, at what
// time of day, and the panels drawn.
type epicDraw struct {
	daysAgo      int
	hour, minute int
	panels       []epicPanel
}

// Performing labs.
const (
	coreLab      = "Riverside Core Laboratory"
	referenceLab = "Northgate Reference Laboratory"
)

// bmp is a basic metabolic panel with its report; values in test order
// na, k, cl, co2, bun, cr, glu, ca, egfr, gap.
func bmp(values [10]string, notes map[string]string, conclusion string) epicPanel {
	tests := []string{"na", "k", "cl", "co2", "bun", "cr", "glu", "ca", "egfr", "gap"}
	p := epicPanel{order: "BASIC METABOLIC PANEL", report: true, status: "final", conclusion: conclusion, lab: coreLab}
	for i, t := range tests {
		p.results = append(p.results, epicResult{test: t, value: values[i], note: notes[t]})
	}
	return p
}

// epicDraws are the patient's collections, newest first. Out-of-range
// values come without interpretation (potassium, glucose, creatinine and
// hemoglobin for a woman, LDL); the lab flags only the cholesterol, and
// calls an out-of-range MCV normal.
var epicDraws = []epicDraw{
	{daysAgo: 2, hour: 7, minute: 40, panels: []epicPanel{
		bmp([10]string{"139", "5.6", "103", "24", "18", "1.12", "128", "9.4", ">60", "12"},
			map[string]string{"k": "SPECIMEN SLIGHTLY HEMOLYZED. INTERPRET WITH CAUTION.", "glu": "PATIENT WAS NOT FASTING"},
			"Potassium may be falsely raised by hemolysis; repeat if clinically indicated."),
		{order: "CBC WITHOUT DIFFERENTIAL", report: true, status: "final", lab: coreLab, results: []epicResult{
			{test: "wbc", value: "6.8"}, {test: "hgb", value: "11.2"}, {test: "hct", value: "34.9"},
			{test: "plt", value: "245"}, {test: "mcv", value: "101.2", interp: "N"},
		}},
		{order: "HEMOGLOBIN A1C", lab: referenceLab, results: []epicResult{{test: "a1c", value: "5.4"}}},
	}},
	{daysAgo: 20, hour: 8, minute: 15, panels: []epicPanel{
		bmp([10]string{"141", "4.4", "101", "26", "15", "0.98", "94", "9.6", ">60", "11"}, nil, ""),
		{order: "LIPID PANEL", report: true, status: "final", lab: coreLab, conclusion: "Fasting specimen.", results: []epicResult{
			{test: "chol", value: "212", interp: "H"}, {test: "hdl", value: "58"},
			{test: "ldl", value: "131"}, {test: "tg", value: "115"},
		}},
		{order: "HIV 1/2 AG/AB SCREEN", lab: referenceLab, results: []epicResult{{test: "hiv", value: "Nonreactive"}}},
	}},
	{daysAgo: 95, hour: 9, minute: 5, panels: []epicPanel{
		bmp([10]string{"137", "4.1", "104", "25", "14", "0.92", "92", "9.1", ">60", "13"}, nil, ""),
		{order: "CBC WITHOUT DIFFERENTIAL", report: true, status: "final", lab: coreLab, results: []epicResult{
			{test: "wbc", value: "7.2"}, {test: "hgb", value: "12.1"}, {test: "hct", value: "36.1"},
			{test: "plt", value: "260"}, {test: "mcv", value: "92.4"},
		}},
		{order: "HEMOGLOBIN A1C", lab: referenceLab, results: []epicResult{{test: "a1c", value: "5.6"}}},
	}},
	{daysAgo: 200, hour: 10, minute: 30, panels: []epicPanel{
		bmp([10]string{"140", "3.9", "102", "23", "16", "0.88", "88", "9.3", ">60", "10"}, nil, ""),
	}},
}

// diagnosticReport is a lab DiagnosticReport as Epic sends one.
type diagnosticReport struct {
	ResourceType      string            `json:"resourceType"`
	ID                string            `json:"id"`
	Status            string            `json:"status"`
	Category          []codeableConcept `json:"category"`
	Code              codeableConcept   `json:"code"`
	Subject           reference         `json:"subject"`
	BasedOn           []reference       `json:"basedOn,omitempty"`
	EffectiveDateTime string            `json:"effectiveDateTime"`
	Issued            string            `json:"issued"`
	Performer         []reference       `json:"performer,omitempty"`
	Result            []reference       `json:"result"`
	Conclusion        string            `json:"conclusion,omitempty"`
}

// epicID derives a stable, opaque, Epic-like id of kind for the patient.
func epicID(patientID, kind string, n int) string {
	return observationID(patientID+"/"+kind, n)
}

// generateEpic builds the patient's observations, newest first, and its
// lab reports, each draw its days before anchor (the lab day of the
// simulator's clock), so the data moves with the clock like every history.
func generateEpic(p *patientSpec, anchor time.Time) ([]observation, []diagnosticReport) {
	subject := reference{Reference: "Patient/" + p.id, Display: p.given + " " + p.family}
	lab := []codeableConcept{{
		Coding: []coding{{System: systemCategory, Code: "laboratory", Display: "Laboratory"}},
		Text:   "Laboratory",
	}}
	var obs []observation
	var reports []diagnosticReport
	for di, d := range epicDraws {
		day := anchor.AddDate(0, 0, -d.daysAgo)
		at := time.Date(day.Year(), day.Month(), day.Day(), d.hour, d.minute, 0, 0, labZone)
		for pi, pn := range d.panels {
			n := di*10 + pi
			order := reference{Reference: "ServiceRequest/" + epicID(p.id, "order", n), Display: pn.order}
			performer := []reference{{Reference: "Organization/" + epicID("lab", pn.lab, 0), Display: pn.lab}}
			issued := at.Add(time.Duration(95+35*pi) * time.Minute).UTC()
			rep := diagnosticReport{
				ResourceType: "DiagnosticReport", ID: epicID(p.id, "report", n), Status: pn.status,
				Category:          []codeableConcept{{Coding: []coding{{System: systemV20074, Code: "LAB", Display: "Laboratory"}}, Text: "Laboratory"}},
				Code:              codeableConcept{Coding: []coding{{System: "urn:oid:1.2.840.114350.1.13.501.2.7.2.696580", Code: strconv.Itoa(100 + pi), Display: pn.order}}, Text: pn.order},
				Subject:           subject,
				BasedOn:           []reference{order},
				EffectiveDateTime: at.Format(time.RFC3339),
				Issued:            issued.Format(time.RFC3339),
				Performer:         performer,
				Conclusion:        pn.conclusion,
			}
			for ri, r := range pn.results {
				t := epicTests[r.test]
				o := observation{
					ResourceType:      "Observation",
					ID:                epicID(p.id, "obs", n*100+ri),
					Status:            "final",
					Category:          lab,
					Code:              t.code(),
					Subject:           subject,
					BasedOn:           []reference{order},
					EffectiveDateTime: at.Format(time.RFC3339),
					Issued:            issued.Format(time.RFC3339),
					Specimen:          &reference{Reference: "Specimen/" + epicID(p.id, "specimen", di), Display: "Blood"},
					Performer:         performer,
					Interpretation:    interp(r.interp),
					ReferenceRange:    t.ranges(t.unit),
				}
				if r.interp == "N" {
					o.Interpretation = []codeableConcept{{Coding: []coding{{System: systemInterpretation, Code: "N", Display: "Normal"}}, Text: "Normal"}}
				}
				t.fill(&o, r.value)
				if r.note != "" {
					o.Note = []annotation{{Text: r.note}}
				}
				obs = append(obs, o)
				rep.Result = append(rep.Result, reference{Reference: "Observation/" + o.ID, Display: t.name})
			}
			if pn.report {
				reports = append(reports, rep)
			}
		}
	}
	return obs, reports
}

// code is the test's code: the organisation's component code first, then
// LOINC when the organisation mapped one, and the lab's own name as text.
func (t epicTest) code() codeableConcept {
	c := codeableConcept{Text: t.name, Coding: []coding{{System: systemEpicComponent, Code: t.component, Display: t.name}}}
	if t.loinc != "" {
		c.Coding = append(c.Coding, coding{System: systemLOINC, Code: t.loinc, Display: t.name})
	}
	return c
}

// fill sets the value as sent: a number, a number with a comparator, or text.
func (t epicTest) fill(o *observation, value string) {
	if t.unit == "" {
		o.ValueString = value
		return
	}
	q := &quantity{Unit: t.unit, System: systemUCUM, Code: t.unit}
	if value[0] == '>' || value[0] == '<' {
		q.Comparator, value = value[:1], value[1:]
	}
	q.Value = json.Number(value)
	o.ValueQuantity = q
}

// reports returns the patient's lab DiagnosticReports as of at, newest
// first; only the patient with Epic's shapes has any.
func (d *dataset) reports(id string, at time.Time) []diagnosticReport {
	p := d.patient(id)
	if p == nil || !p.epic {
		return nil
	}
	_, reps := generateEpic(p, anchorDay(at))
	return reps
}
