package smart

import "testing"

func TestGrants(t *testing.T) {
	tests := []struct {
		scope string
		want  bool
	}{
		{"launch openid patient/Observation.read patient/DiagnosticReport.read", true},
		{"patient/DiagnosticReport.rs", true},
		{"patient/DiagnosticReport.r", true},
		{"patient/DiagnosticReport.s", true},
		{"patient/DiagnosticReport.cruds", true},
		{"patient/DiagnosticReport.rs?category=LAB", true},
		{"patient/*.read", true},
		{"patient/*.rs", true},
		{"user/DiagnosticReport.read", true},
		{"", false},
		{"launch openid patient/Observation.read patient/Patient.read", false},
		{"patient/DiagnosticReport.write", false},
		{"patient/DiagnosticReport.c", false},
		{"patient/DiagnosticReport.sr", false},
		{"patient/DiagnosticReport.rr", false},
		{"patient/DiagnosticReport", false},
		{"patient/DiagnosticReportX.read", false},
		{"system/DiagnosticReport.read", false},
		{"DiagnosticReport.read", false},
		{"patient/diagnosticreport.read", false},
	}
	for _, tt := range tests {
		if got := Grants(tt.scope, "DiagnosticReport"); got != tt.want {
			t.Errorf("Grants(%q) = %v, want %v", tt.scope, got, tt.want)
		}
	}
}
