package config

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestTrustedProxies(t *testing.T) {
	base := "listen: 127.0.0.1:8080\npublic_url: http://localhost:8080\nissuers:\n" +
		"  - iss: https://ehr.example.org/fhir\n    client_id: a\n    client_secret: b\n"
	tests := []struct {
		name     string
		yaml     string
		wantNets []string
		wantErr  string
	}{
		{name: "absent", yaml: base, wantNets: []string{}},
		{name: "cidrs and ips", yaml: base + "trusted_proxies: [10.0.0.0/8, 192.0.2.7, \"2001:db8::/32\"]\n",
			wantNets: []string{"10.0.0.0/8", "192.0.2.7/32", "2001:db8::/32"}},
		{name: "not an address", yaml: base + "trusted_proxies: [proxy.example.org]\n", wantErr: "trusted_proxies[0]"},
		{name: "bad cidr", yaml: base + "trusted_proxies: [10.0.0.0/99]\n", wantErr: "trusted_proxies[0]"},
		{name: "everything", yaml: base + "trusted_proxies: [10.0.0.0/8, 0.0.0.0/0]\n", wantErr: "trusted_proxies[1]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse([]byte(tt.yaml), env(nil))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one naming %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := []string{}
			for _, n := range cfg.TrustedProxyNets() {
				got = append(got, n.String())
			}
			if diff := cmp.Diff(tt.wantNets, got); diff != "" {
				t.Errorf("nets (-want +got):\n%s", diff)
			}
		})
	}
}
