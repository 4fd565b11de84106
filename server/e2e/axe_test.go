package e2e_test

import (
	"os"
	"testing"
	"time"

	"smartlabs/server/e2e"
)

// axeWait bounds one axe-core audit: a page of hundreds of rows takes
// seconds on a loaded machine, and the bound only turns a hang into a failure.
const axeWait = 3 * time.Minute

// axeViolation is one failed axe rule with its first nodes.
type axeViolation struct {
	ID     string   `json:"id"`
	Impact string   `json:"impact"`
	Count  int      `json:"count"`
	Nodes  []string `json:"nodes"`
}

// mustAxeSource reads axe-core from node_modules, skipping the test when it is
// not installed (unless browser tests are required).
func mustAxeSource(t *testing.T) string {
	t.Helper()
	src, err := os.ReadFile("../../node_modules/axe-core/axe.min.js")
	if err != nil {
		if os.Getenv(e2e.RequireEnv) != "" {
			t.Fatalf("axe-core is not installed (npm ci): %v", err)
		}
		t.Skipf("axe-core is not installed (npm ci): %v", err)
	}
	return string(src)
}

// mustAxe runs axe-core's WCAG 2.1 A and AA rules on the frame's document and
// returns what it finds; src is axe.min.js, loaded when missing.
func mustAxe(t *testing.T, tab *e2e.Tab, src string) []axeViolation {
	t.Helper()
	var loaded bool
	if mustEval(t, tab, `typeof axe !== "undefined"`, &loaded); !loaded {
		if err := tab.EvalWithin(frame, src+`; true`, nil, axeWait); err != nil {
			t.Fatalf("load axe-core: %v", err)
		}
	}
	var violations []axeViolation
	if err := tab.EvalWithin(frame, `axe.run(document, {runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}})
		.then(r => r.violations.map(v => ({id: v.id, impact: v.impact, count: v.nodes.length,
			nodes: v.nodes.slice(0, 5).map(n => n.target.join(" ") + ": " + n.failureSummary)})))`, &violations, axeWait); err != nil {
		t.Fatalf("axe-core: %v", err)
	}
	return violations
}
