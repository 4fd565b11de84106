package ehrsim

import (
	"strings"
	"testing"
	"time"
)

func TestDataShapes(t *testing.T) {
	d := newDataset()
	for _, p := range d.patients {
		if p.results == 0 || p.edge {
			continue
		}
		t.Run(p.family, func(t *testing.T) {
			obs := d.observations(p.id)
			if len(obs) != p.results {
				t.Fatalf("got %d observations, want %d", len(obs), p.results)
			}
			shapes := map[string]int{}
			loincs := map[string]bool{}
			var newest, oldest time.Time
			for i, o := range obs {
				loincs[o.Code.Coding[0].Code] = true
				if o.Code.Text == "" || o.Code.Coding[0].Display == "" {
					t.Errorf("%s: code without text or display", o.ID)
				}
				shapes["status:"+o.Status]++
				switch {
				case o.ValueQuantity != nil:
					shapes["valueQuantity"]++
					if o.ValueQuantity.System != systemUCUM || o.ValueQuantity.Code == "" {
						t.Errorf("%s: quantity without UCUM code", o.ID)
					}
				case o.ValueString != "":
					shapes["valueString"]++
				case o.ValueCodeableConcept != nil:
					shapes["valueCodeableConcept"]++
				case len(o.Component) > 0:
					shapes["component"]++
				case o.DataAbsentReason != nil:
					shapes["dataAbsentReason"]++
				default:
					t.Errorf("%s has no value", o.ID)
				}
				for _, in := range o.Interpretation {
					shapes["flag:"+in.Coding[0].Code]++
				}
				for _, rr := range o.ReferenceRange {
					switch {
					case rr.Low != nil && rr.High != nil:
						shapes["range:both"]++
					case rr.Low != nil || rr.High != nil:
						shapes["range:one-sided"]++
					case rr.Text != "":
						shapes["range:text"]++
					}
				}
				at, err := time.Parse(time.RFC3339, o.EffectiveDateTime)
				if err != nil || !strings.HasSuffix(o.EffectiveDateTime, "-05:00") {
					t.Fatalf("%s: effectiveDateTime %q", o.ID, o.EffectiveDateTime)
				}
				if i == 0 {
					newest = at
				}
				oldest = at
			}
			for _, k := range []string{
				"valueQuantity", "valueString", "valueCodeableConcept", "component", "dataAbsentReason",
				"status:final", "status:preliminary", "status:corrected", "status:entered-in-error",
				"flag:H", "flag:L", "flag:A", "range:both", "range:one-sided", "range:text",
			} {
				if shapes[k] == 0 {
					t.Errorf("no %s result", k)
				}
			}
			if shapes["flag:HH"]+shapes["flag:LL"] == 0 {
				t.Error("no critical result")
			}
			if len(loincs) < 30 {
				t.Errorf("%d distinct LOINC codes, want at least 30", len(loincs))
			}
			if span := newest.Sub(oldest); span < 5*365*24*time.Hour {
				t.Errorf("history spans %v, want at least 5 years", span)
			}
		})
	}
}

func TestDataPatients(t *testing.T) {
	d := newDataset()
	var empty, large, noMRN, xss int
	for _, p := range d.patients {
		obs := d.observations(p.id)
		switch {
		case len(obs) == 0:
			empty++
		case len(obs) == 5000:
			large++
		}
		if p.mrn == "" {
			noMRN++
		}
		for _, o := range obs {
			if strings.Contains(o.Code.Text, "<script>alert(1)</script>") {
				xss++
				if p.id == d.patients[0].id {
					t.Error("the script-tag lab is on the first patient")
				}
			}
		}
	}
	if len(d.patients) < 5 || empty != 1 || large != 1 || noMRN != 1 || xss != 1 {
		t.Errorf("patients %d, empty %d, large %d, without MRN %d, script-tag labs %d; want >=5, 1, 1, 1, 1",
			len(d.patients), empty, large, noMRN, xss)
	}
}
