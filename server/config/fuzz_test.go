package config

import "testing"

// FuzzParse: no input makes Parse panic, and whatever it accepts validates.
func FuzzParse(f *testing.F) {
	f.Add([]byte(good))
	f.Add([]byte("listen: 127.0.0.1:1\npublic_url: http://localhost\nissuers: [{iss: 'https://a/b', client_id: x, client_secret: ${S}}]"))
	f.Add([]byte("a: [\n"))
	f.Add([]byte("issuers: {}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data, func(string) string { return "v" })
		if err != nil {
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("accepted config fails validation: %v", err)
		}
		for _, is := range cfg.Issuers {
			if cfg.Lookup(is.ISS) == nil {
				t.Fatalf("configured issuer %q not found by Lookup", is.ISS)
			}
		}
	})
}
