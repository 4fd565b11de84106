package server_test

import (
	"testing"

	"smartlabs/server/ehrsim"
)

// TestMetadataOnlyDiscovery: a server without smart-configuration publishes its
// endpoints in the CapabilityStatement and names no issuer there. Sign-in
// completes whether its RFC 9207 iss names the FHIR base or is absent, and an
// iss naming any other server is still refused before the code is sent.
func TestMetadataOnlyDiscovery(t *testing.T) {
	tests := []struct {
		name     string
		switches ehrsim.Switches
	}{
		{"iss names the FHIR base", ehrsim.Switches{MetadataOnly: true, ResponseISS: true}},
		{"no iss", ehrsim.Switches{MetadataOnly: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, harnessOptions{Switches: tt.switches})
			p := h.Patient("Lin")
			_, doc := mustLaunch(t, h, newBrowser(t), p)
			if got := text(doc, "banner-name"); got != p.Name {
				t.Errorf("banner name = %q, want %q", got, p.Name)
			}
			if h.CountSimRequests("/fhir/R4/metadata") == 0 {
				t.Error("discovery did not use the CapabilityStatement")
			}
		})
	}

	t.Run("iss names another server", func(t *testing.T) {
		h := newHarness(t, harnessOptions{Switches: ehrsim.Switches{MetadataOnly: true, ResponseISS: true}})
		p := h.Patient("Lin")
		b := newBrowser(t)
		for _, forged := range []string{h.Sim.OAuthIssuer(), "https://evil.example/fhir/R4", h.Sim.ISS() + "/other"} {
			cb := callbackURL(t, h, b, p)
			q := cb.Query()
			q.Set("iss", forged)
			before := h.CountSimRequests("/oauth2/token")
			resp, doc, _ := b.get(h.AppURL + "/callback?" + q.Encode())
			assertPage(t, resp, doc, 400, "wrong server")
			if h.CountSimRequests("/oauth2/token") != before {
				t.Errorf("iss %q: the code was sent to the token endpoint", forged)
			}
		}
	})
}
