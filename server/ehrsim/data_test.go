package ehrsim

import (
	"strings"
	"testing"
	"time"
)

// dataClock is a clock reading for tests that do not care about the date.
var dataClock = time.Date(2026, time.December, 2, 15, 4, 0, 0, time.UTC)

func TestDataShapes(t *testing.T) {
	d := newDataset()
	for _, p := range d.patients {
		if p.results == 0 || p.edge || p.epic || p.pending > 0 {
			continue
		}
		t.Run(p.family, func(t *testing.T) {
			obs := d.observations(p.id, dataClock)
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
		obs := d.observations(p.id, dataClock)
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

// TestDataFollowsTheClock: each history ends just before the clock's time,
// whatever the date, so "7 days" and "30 days" always have results; one lab
// day always gives the same data, and the next day the same data a day later.
func TestDataFollowsTheClock(t *testing.T) {
	clocks := []time.Time{
		time.Date(2020, time.February, 29, 3, 0, 0, 0, time.UTC),
		time.Date(2026, time.December, 2, 12, 0, 0, 0, time.UTC),
		time.Date(2031, time.July, 15, 4, 59, 0, 0, time.UTC), // 23:59 the day before at the lab
		time.Date(2031, time.July, 15, 5, 0, 0, 0, time.UTC),  // 00:00 at the lab
	}
	for _, now := range clocks {
		d := newDataset()
		for _, p := range d.patients {
			if p.results == 0 || p.edge {
				continue // the edge-case patient's dates (years 0001 and 9999) are absolute on purpose
			}
			var newest time.Time
			week := 0
			for _, o := range d.observations(p.id, now) {
				if p.pending > 0 && o.EffectiveDateTime == "" {
					continue // an order not yet collected has no collection time
				}
				eff, err1 := time.Parse(time.RFC3339, o.EffectiveDateTime)
				iss, err2 := time.Parse(time.RFC3339, o.Issued)
				if err1 != nil || err2 != nil {
					t.Fatalf("%v %s: dates %q, %q", now, p.family, o.EffectiveDateTime, o.Issued)
				}
				if !iss.Before(now) || !eff.Before(iss) {
					t.Fatalf("%v %s: collected %v, issued %v: not both before the clock, in order", now, p.family, eff, iss)
				}
				if eff.After(newest) {
					newest = eff
				}
				if now.Sub(eff) <= 7*24*time.Hour {
					week++
				}
			}
			if p.pending > 0 {
				// Its newest draws are the orders not yet collected; what was
				// collected before them is still within the month.
				if age := now.Sub(newest); age > 30*24*time.Hour {
					t.Errorf("%v %s: newest collected result is %v old", now, p.family, age)
				}
				continue
			}
			if age := now.Sub(newest); age > (newestDrawAge+1)*24*time.Hour {
				t.Errorf("%v %s: newest result is %v old", now, p.family, age)
			}
			if week == 0 {
				t.Errorf("%v %s: no result in the last 7 days", now, p.family)
			}
		}
	}

	// Two readings on one lab day give the same data; the next day, the same
	// data one day later.
	morning := time.Date(2026, time.December, 2, 6, 0, 0, 0, labZone)
	a := newDataset().observations(patientSpecs[0].id, morning)
	b := newDataset().observations(patientSpecs[0].id, morning.Add(17*time.Hour))
	c := newDataset().observations(patientSpecs[0].id, morning.Add(24*time.Hour))
	for i := range a {
		if a[i].ID != b[i].ID || a[i].EffectiveDateTime != b[i].EffectiveDateTime || a[i].Issued != b[i].Issued {
			t.Fatalf("result %d differs between two readings on one day: %+v, %+v", i, a[i], b[i])
		}
		ta, _ := time.Parse(time.RFC3339, a[i].EffectiveDateTime)
		tc, _ := time.Parse(time.RFC3339, c[i].EffectiveDateTime)
		if a[i].ID != c[i].ID || tc.Sub(ta) != 24*time.Hour {
			t.Fatalf("result %d the next day: %s at %s, was %s at %s", i, c[i].ID, c[i].EffectiveDateTime, a[i].ID, a[i].EffectiveDateTime)
		}
	}
}
