package ehrsim

import (
	"net/http"
	"net/url"
	"testing"
)

func TestRevokeRefreshSwitch(t *testing.T) {
	f := mustFixture(t, Switches{})
	code, verifier := f.mustCode(t, patientSpecs[0].id, secretClient, defaultScope+" online_access")
	_, body := f.tokenRequest(t, codeForm(code, verifier), secretClient, testSecret)
	rt, _ := body["refresh_token"].(string)
	if rt == "" {
		t.Fatal("no refresh token for online_access")
	}
	refresh := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}

	f.sim.SetSwitches(Switches{RevokeRefresh: true})
	status, body := f.tokenRequest(t, refresh, secretClient, testSecret)
	if status != http.StatusBadRequest || body["error"] != "invalid_grant" {
		t.Fatalf("revoked refresh: %d %v, want 400 invalid_grant", status, body["error"])
	}

	// Turning the switch off shows the refusal came from the switch, not from a spent token.
	f.sim.SetSwitches(Switches{})
	if status, body := f.tokenRequest(t, refresh, secretClient, testSecret); status != http.StatusOK || body["access_token"] == nil {
		t.Errorf("refresh with the switch off: %d %v, want 200 with a token", status, body["error"])
	}
}
