package e2e_test

import (
	"testing"

	"smartlabs/server/config"
	"smartlabs/server/e2e"
	"smartlabs/server/servertest"
)

// TestFormPostAuthorize: with authorize_post on (Epic's recommendation for EHR
// launch), the authorization request leaves the frame as a form POST that our
// script submits under the strict CSP, and the launch completes.
func TestFormPostAuthorize(t *testing.T) {
	env := servertest.New(t, servertest.Options{Mutate: func(c *config.Config) {
		c.Issuers[0].AuthorizePost = true
	}})
	b := e2e.NewBrowser(t)
	tab := b.NewTab(t)
	openChart(t, env, tab, "Reyes")

	var posted bool
	for _, r := range env.Sim.Requests() {
		if r.Path == "/oauth2/authorize" && r.Method == "POST" {
			posted = true
		}
		if r.Path == "/oauth2/authorize" && r.Method == "GET" {
			t.Error("authorization request sent as GET despite authorize_post")
		}
	}
	if !posted {
		t.Fatal("no form-POST authorization request reached the simulator")
	}
	if err := tab.WaitText(frame, `[data-testid="result-count"]`, "result", uiWait); err != nil {
		t.Fatal(err)
	}
}
