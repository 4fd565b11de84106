package ehrsim

// pendingResults is how many of the "Pending, Undated" patient's results are
// orders not yet collected.
const pendingResults = 6

// undate turns obs, a patient's newest results, into orders not yet
// collected, as an EHR returns them: no effective[x], status registered
// (no value, not issued) or preliminary (a value, issued). Each keeps a
// meta.lastUpdated, the time it had been issued: every resource has one,
// dated or not. An app that searches by date must ask for these with
// date:missing=true, or lose them.
func undate(obs []observation) {
	for i := range obs {
		o := &obs[i]
		o.Meta = &meta{LastUpdated: o.Issued}
		o.EffectiveDateTime = ""
		if i%2 == 0 {
			o.Status = "registered"
			o.Issued = ""
			o.ValueQuantity, o.ValueString, o.ValueCodeableConcept = nil, "", nil
			o.DataAbsentReason, o.Interpretation, o.Component = nil, nil, nil
		} else {
			o.Status = "preliminary"
		}
	}
}
