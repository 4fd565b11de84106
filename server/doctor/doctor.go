// Package doctor checks a smartlabs configuration against the EHRs it names:
// for each issuer, that discovery answers and advertises what smartlabs
// needs; for a backend-services entry, that a system-level token can be had.
// It prints nothing itself: callers format the rows it returns.
package doctor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"smartlabs/server/config"
	"smartlabs/server/keys"
	"smartlabs/server/smart"
)

// Status is the verdict of one check.
type Status string

// The verdicts. Only Fail makes a run fail.
const (
	Pass Status = "PASS"
	Fail Status = "FAIL"
	// Info rows show something to register or compare; they cannot fail.
	Info Status = "INFO"
	// Skip rows could not run because a check they depend on failed.
	Skip Status = "SKIP"
	// Warn rows found something accepted but risky; they do not fail a run.
	Warn Status = "WARN"
)

// Row is one line of the doctor's table.
type Row struct {
	// Subject is the issuer or backend-services name the row is about.
	Subject string
	// Check names what was checked.
	Check string
	// Status is the verdict.
	Status Status
	// Detail says what was found; never a secret or token.
	Detail string
}

// Options configure the checks.
type Options struct {
	// HTTPClient makes every request; nil means one that follows no redirects.
	HTTPClient *http.Client
	// Timeout bounds each request; 0 means 10 s.
	Timeout time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

func (o Options) withDefaults() Options {
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{
			// A redirect from a discovery or token endpoint is reported, not followed.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Failed reports whether any row failed.
func Failed(rows []Row) bool {
	return slices.ContainsFunc(rows, func(r Row) bool { return r.Status == Fail })
}

// WriteTable prints rows as an aligned table with a summary line.
func WriteTable(w io.Writer, rows []Row) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SUBJECT\tCHECK\tRESULT\tDETAIL")
	failed, warned := 0, 0
	for _, r := range rows {
		switch r.Status {
		case Fail:
			failed++
		case Warn:
			warned++
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", clean(r.Subject), clean(r.Check), r.Status, clean(r.Detail))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	verdict := "all checks passed"
	if failed > 0 {
		verdict = fmt.Sprintf("%d check(s) FAILED", failed)
	}
	if warned > 0 {
		verdict += fmt.Sprintf(", %d warning(s)", warned)
	}
	_, err := fmt.Fprintf(w, "\n%d rows: %s\n", len(rows), verdict)
	return err
}

// clean keeps text from remote servers printable and short for a terminal.
func clean(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// smartConfiguration is what the checks read from .well-known/smart-configuration.
type smartConfiguration struct {
	Issuer                 string   `json:"issuer"`
	AuthorizationEndpoint  string   `json:"authorization_endpoint"`
	TokenEndpoint          string   `json:"token_endpoint"`
	JWKSURI                string   `json:"jwks_uri"`
	Capabilities           []string `json:"capabilities"`
	CodeChallengeMethods   []string `json:"code_challenge_methods_supported"`
	TokenEndpointAuth      []string `json:"token_endpoint_auth_methods_supported"`
	TokenEndpointAuthAlgs  []string `json:"token_endpoint_auth_signing_alg_values_supported"`
	GrantTypes             []string `json:"grant_types_supported"`
	AuthorizationRespISSOK bool     `json:"authorization_response_iss_parameter_supported"`
}

// CheckIssuers runs every check for every configured issuer.
func CheckIssuers(ctx context.Context, cfg *config.Config, opts Options) []Row {
	opts = opts.withDefaults()
	var rows []Row
	for i := range cfg.Issuers {
		rows = append(rows, checkIssuer(ctx, cfg, &cfg.Issuers[i], opts)...)
	}
	return rows
}

// authMethod is the client authentication smartlabs uses with is.
func authMethod(is *config.Issuer) string {
	if is.PrivateKeyFile != "" {
		return "private_key_jwt"
	}
	return "client_secret_basic"
}

func checkIssuer(ctx context.Context, cfg *config.Config, is *config.Issuer, opts Options) []Row {
	var rows []Row
	add := func(check string, st Status, format string, args ...any) {
		rows = append(rows, Row{Subject: is.Name, Check: check, Status: st, Detail: fmt.Sprintf(format, args...)})
	}
	method := authMethod(is)
	add("client", Info, "client_id %s, %s", is.ClientID, method)

	var key *keys.Key
	if is.PrivateKeyFile != "" {
		key = checkKeyFile(is.PrivateKeyFile, add)
		for _, f := range is.ExtraPublicKeys {
			ps, err := keys.LoadPublic(f)
			if err != nil {
				add("extra public key", Fail, "%v", err)
				continue
			}
			for _, p := range ps {
				add("extra public key", Pass, "%s published as kid %s", f, p.KeyID())
			}
		}
	}

	discoveryURL := strings.TrimSuffix(is.ISS, "/") + "/.well-known/smart-configuration"
	var sc smartConfiguration
	status, err := getJSON(ctx, opts, discoveryURL, is.ClientID, &sc)
	discovered := false
	switch {
	case err != nil:
		add("discovery", Fail, "%s: %v", discoveryURL, err)
	case status != http.StatusOK:
		add("discovery", Fail, "%s answered %d", discoveryURL, status)
	case sc.AuthorizationEndpoint == "" || sc.TokenEndpoint == "":
		add("discovery", Fail, "%s lacks authorization_endpoint or token_endpoint", discoveryURL)
	default:
		discovered = true
		add("discovery", Pass, "%s", discoveryURL)
	}
	dependent := []string{"endpoint hosts", "capability launch-ehr", "capability launch-standalone", "PKCE S256", "client auth " + method, "id_token JWKS"}
	if !discovered {
		for _, c := range dependent {
			add(c, Skip, "discovery failed")
		}
	} else {
		refused := checkEndpointHosts(is, sc, add)
		for _, capability := range []string{"launch-ehr", "launch-standalone"} {
			if slices.Contains(sc.Capabilities, capability) {
				add("capability "+capability, Pass, "advertised")
			} else {
				add("capability "+capability, Fail, "not in capabilities %v", sc.Capabilities)
			}
		}
		if slices.Contains(sc.CodeChallengeMethods, "S256") {
			add("PKCE S256", Pass, "code_challenge_methods_supported %v", sc.CodeChallengeMethods)
		} else {
			// smartlabs always sends S256 and refuses a server without it.
			add("PKCE S256", Fail, "code_challenge_methods_supported %v lacks S256", sc.CodeChallengeMethods)
		}
		switch {
		case slices.Contains(sc.TokenEndpointAuth, method):
			add("client auth "+method, Pass, "token_endpoint_auth_methods_supported %v", sc.TokenEndpointAuth)
		case len(sc.TokenEndpointAuth) == 0 && method == "client_secret_basic":
			add("client auth "+method, Pass, "not advertised; client_secret_basic is the OAuth default")
		default:
			add("client auth "+method, Fail, "token_endpoint_auth_methods_supported %v lacks %s", sc.TokenEndpointAuth, method)
		}
		if key != nil {
			alg := string(key.Algorithm())
			switch {
			case slices.Contains(sc.TokenEndpointAuthAlgs, alg):
				add("assertion alg "+alg, Pass, "token_endpoint_auth_signing_alg_values_supported %v", sc.TokenEndpointAuthAlgs)
			case len(sc.TokenEndpointAuthAlgs) == 0:
				add("assertion alg "+alg, Info, "the server does not list its signing algorithms")
			default:
				add("assertion alg "+alg, Fail, "token_endpoint_auth_signing_alg_values_supported %v lacks %s", sc.TokenEndpointAuthAlgs, alg)
			}
		}
		if is.AuthorizePost {
			if slices.Contains(sc.Capabilities, "authorize-post") {
				add("capability authorize-post", Pass, "advertised (authorize_post: true)")
			} else {
				add("capability authorize-post", Info, "not advertised: smartlabs will use GET")
			}
		}
		if refused["jwks_uri"] {
			// A refused jwks_uri is not fetched: it may be the very host it must not reach.
			add("id_token JWKS", Skip, "jwks_uri refused (see endpoint hosts)")
		} else {
			rows = append(rows, checkJWKS(ctx, opts, is, sc.JWKSURI))
		}
	}

	add("redirect URI", Info, "register exactly %s", cfg.RedirectURIFor(is))
	add("launch URL", Info, "register %s", strings.TrimSuffix(cfg.PublicURL, "/")+"/launch")
	if method == "private_key_jwt" {
		add("JWKS URL", Info, "register %s (or upload the certificate publickey.b64)", cfg.JWKSURL())
	}
	if fa := cfg.FrameAncestorsFor(is); len(fa) > 0 {
		add("frame ancestors", Info, "%s", strings.Join(fa, " "))
	} else {
		add("frame ancestors", Info, "none: the app cannot be shown inside the EHR's frame")
	}
	return rows
}

// checkKeyFile reports the private key file's mode and loads the key, adding
// a row for each; it returns nil when the key cannot be used.
func checkKeyFile(path string, add func(string, Status, string, ...any)) *keys.Key {
	perm, err := keys.StatPerm(path)
	switch {
	case err != nil:
		// Load below reports the missing or unreadable file.
	case perm.Problem != "":
		add("private key mode", Fail, "%s is mode %s, %s: smartlabs refuses it; run chmod 600 %s", path, perm, perm.Problem, path)
		add("private key", Skip, "refused for its mode")
		return nil
	case perm.Warning != "":
		add("private key mode", Warn, "%s is mode %s, %s: accepted for a group that must read it (Kubernetes fsGroup); 0600 or 0400 otherwise", path, perm, perm.Warning)
	default:
		add("private key mode", Pass, "%s is mode %s", path, perm)
	}
	k, err := keys.Load(path)
	if err != nil {
		add("private key", Fail, "%v", err)
		return nil
	}
	add("private key", Pass, "%s key, kid %s", k.Algorithm(), k.KeyID())
	return k
}

// checkEndpointHosts applies smartlabs' rule for where an issuer's OAuth
// endpoints may be (see smart.CheckEndpoint) to the discovery document, adding
// one row, and returns the names of the fields it refused.
func checkEndpointHosts(is *config.Issuer, sc smartConfiguration, add func(string, Status, string, ...any)) map[string]bool {
	fields := []struct{ name, val string }{
		{"issuer", sc.Issuer},
		{"authorization_endpoint", sc.AuthorizationEndpoint},
		{"token_endpoint", sc.TokenEndpoint},
		{"jwks_uri", sc.JWKSURI},
	}
	refused := map[string]bool{}
	var problems, hosts []string
	for _, f := range fields {
		if f.val == "" {
			continue
		}
		if err := smart.CheckEndpoint(*is, f.val); err != nil {
			refused[f.name] = true
			problems = append(problems, fmt.Sprintf("%s %s: %v", f.name, f.val, err))
			continue
		}
		if u, err := url.Parse(f.val); err == nil && !slices.Contains(hosts, u.Host) {
			hosts = append(hosts, u.Host)
		}
	}
	if len(problems) > 0 {
		add("endpoint hosts", Fail, "%s (smartlabs refuses this discovery; if the host is the EHR's own, list it in allowed_hosts)", strings.Join(problems, "; "))
	} else {
		add("endpoint hosts", Pass, "OAuth endpoints on %s", strings.Join(hosts, ", "))
	}
	return refused
}

// checkJWKS fetches the issuer's id_token signing keys.
func checkJWKS(ctx context.Context, opts Options, is *config.Issuer, jwksURI string) Row {
	r := Row{Subject: is.Name, Check: "id_token JWKS"}
	if jwksURI == "" {
		r.Status, r.Detail = Fail, "discovery names no jwks_uri: id_tokens cannot be verified"
		return r
	}
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	status, err := getJSON(ctx, opts, jwksURI, is.ClientID, &set)
	switch {
	case err != nil:
		r.Status, r.Detail = Fail, fmt.Sprintf("%s: %v", jwksURI, err)
	case status != http.StatusOK:
		r.Status, r.Detail = Fail, fmt.Sprintf("%s answered %d", jwksURI, status)
	case len(set.Keys) == 0:
		r.Status, r.Detail = Fail, fmt.Sprintf("%s holds no keys", jwksURI)
	default:
		r.Status, r.Detail = Pass, fmt.Sprintf("%s: %d key(s)", jwksURI, len(set.Keys))
	}
	return r
}

// getJSON fetches u and decodes a 200 answer into v. A non-200 status is
// returned without error; a 200 that is not JSON is an error.
func getJSON(ctx context.Context, opts Options, u, clientID string, v any) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Accept", "application/json")
	if clientID != "" {
		req.Header.Set(smart.EpicClientIDHeader, clientID)
	}
	resp, err := opts.HTTPClient.Do(req)
	if err != nil {
		return 0, unreachable(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, nil
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(v); err != nil {
		return resp.StatusCode, fmt.Errorf("not JSON: %v", err)
	}
	return resp.StatusCode, nil
}

// unreachable shortens a transport error to its cause.
func unreachable(err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return errors.New("unreachable: timed out")
	}
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 {
		msg = msg[i+2:]
	}
	return errors.New("unreachable: " + msg)
}
