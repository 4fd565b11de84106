package labsview

import (
	"strings"
	"time"

	"smartlabs/components/labs"
	"smartlabs/server/fhir"
)

// Panels. A result belongs to the panel of the lab report that lists it
// (DiagnosticReport.result) when reports are available; else to its order
// (Observation.basedOn, named by the order's display); else to the grouping
// result that lists it (hasMember) or that it derives from (derivedFrom).
// Epic links panels only through reports and orders; other servers use
// hasMember.

// Report is a lab DiagnosticReport mapped for the views.
type Report struct {
	// Info is what the view shows of it.
	Info labs.Report
	// At is when it was collected; zero when unknown.
	At time.Time
	// Results are the ids of the Observations it lists.
	Results []string
}

// Reports maps DiagnosticReports for the views; times are shown in loc.
func Reports(drs []fhir.DiagnosticReport, loc *time.Location) []Report {
	if loc == nil {
		loc = time.UTC
	}
	out := make([]Report, 0, len(drs))
	for i := range drs {
		d := &drs[i]
		r := Report{At: d.Effective, Results: refIDs(d.Results)}
		r.Info = labs.Report{
			Name:       conceptName(d.Code),
			Status:     d.Status,
			StatusNote: statusNote(d.Status),
			Conclusion: d.Conclusion,
		}
		if r.Info.Name == "" {
			r.Info.Name = "Lab report"
		}
		for _, p := range d.Performers {
			if p.Display != "" {
				r.Info.Performer = p.Display
				break
			}
		}
		r.Info.Collected, r.Info.CollectedISO = collectedAt(d.Effective, d.EffectiveDateOnly, loc)
		if !r.At.IsZero() && !d.EffectiveDateOnly {
			r.At = r.At.In(loc)
		}
		out = append(out, r)
	}
	return out
}

// ReportsSize estimates the bytes reports hold, for the cache's bound.
func ReportsSize(rs []Report) int {
	n := 0
	for i := range rs {
		in := &rs[i].Info
		n += 200 + len(in.Name) + len(in.Performer) + len(in.Conclusion) + 24*len(rs[i].Results)
	}
	return n
}

// Panels says which panel each result belongs to.
type Panels struct {
	reports []Report
	// report is the index in reports of the report listing a result, by result id.
	report map[string]int
	// member is the name of the grouping result listing a result (hasMember,
	// or derivedFrom a grouping result), by result id.
	member map[string]string
}

// PanelsOf works out the panels of rs (every result of the launch, so that a
// filter never hides a panel's grouping result) from reports, orders and
// grouping results.
func PanelsOf(rs []Result, reports []Report) Panels {
	p := Panels{reports: reports}
	for i := range reports {
		for _, id := range reports[i].Results {
			if p.report == nil {
				p.report = map[string]int{}
			}
			if j, ok := p.report[id]; !ok || reports[i].At.After(reports[j].At) {
				p.report[id] = i
			}
		}
	}
	groups := map[string]string{}
	for i := range rs {
		if len(rs[i].Members) == 0 {
			continue
		}
		groups[rs[i].Row.ID] = rs[i].Row.Name
		for _, m := range rs[i].Members {
			if p.member == nil {
				p.member = map[string]string{}
			}
			if _, ok := p.member[m]; !ok {
				p.member[m] = rs[i].Row.Name
			}
		}
	}
	if len(groups) == 0 {
		return p
	}
	for i := range rs {
		for _, d := range rs[i].DerivedFrom {
			if name, ok := groups[d]; ok {
				if _, set := p.member[rs[i].Row.ID]; !set {
					p.member[rs[i].Row.ID] = name
				}
			}
		}
	}
	return p
}

// nameOf is the name of r's panel, "" when it is in none, and the report
// that lists it, if any.
func (p *Panels) nameOf(r *Result) (string, *Report) {
	if i, ok := p.report[r.Row.ID]; ok {
		return p.reports[i].Info.Name, &p.reports[i]
	}
	if r.OrderName != "" {
		return r.OrderName, nil
	}
	return p.member[r.Row.ID], nil
}

// orderName is the name of a result's order: the display of its first
// basedOn reference that has one.
func orderName(refs []fhir.Reference) string {
	for _, r := range refs {
		if d := strings.TrimSpace(r.Display); d != "" {
			return d
		}
	}
	return ""
}

// collectedAt formats a time in loc like the Collected column, and its RFC
// 3339 form; a date without a time of day is shown as that date.
func collectedAt(t time.Time, dateOnly bool, loc *time.Location) (text, iso string) {
	if t.IsZero() {
		return "", ""
	}
	if dateOnly {
		d := t.Format(dateLayout)
		return d, d
	}
	t = t.In(loc)
	return t.Format(collectedLayout), t.Format(time.RFC3339)
}
