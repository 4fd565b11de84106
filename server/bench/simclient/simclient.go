// Package simclient is a plain Go SMART on FHIR client for the project's EHR
// simulator, used only by benchmarks: it does an EHR launch as a public client
// (authorize with PKCE, token) and fetches Patient and every search page one
// after another. It is the "sequential limit" of the end-to-end benchmark and
// the source of the simulator's own Observations for the micro-benchmarks.
//
// It shares no code with the app's smart and fhir packages on purpose: a bug
// in those must not make the baseline look like them.
package simclient

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"time"

	"smartlabs/server/ehrsim"
)

// Scope is what the client asks for in an EHR launch.
const Scope = "launch openid fhirUser patient/Patient.read patient/Observation.read"

// Client launches and fetches against one simulator.
type Client struct {
	// HTTP sends every request; redirects must not be followed (the authorize
	// answer is read from its Location). Nil means a client that does not follow them.
	HTTP *http.Client
	// ISS is the FHIR base URL; AuthorizeURL and TokenURL the OAuth endpoints.
	ISS, AuthorizeURL, TokenURL string
	// ClientID is a client registered with RedirectURI.
	ClientID, RedirectURI string
	// Secret, when set, authenticates a confidential client (client_secret_basic);
	// empty means a public client.
	Secret string
}

// Token is the part of a token response the benchmark uses.
type Token struct {
	AccessToken string `json:"access_token"`
	Patient     string `json:"patient"`
}

func (c *Client) http() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// Launch does the EHR launch for launchToken: authorize with PKCE (S256),
// read the code from the redirect, exchange it at the token endpoint.
func (c *Client) Launch(ctx context.Context, launchToken string) (*Token, error) {
	verifier := random(48)
	sum := sha256.Sum256([]byte(verifier))
	state := random(16)
	q := url.Values{
		"response_type": {"code"}, "client_id": {c.ClientID}, "redirect_uri": {c.RedirectURI},
		"scope": {Scope}, "state": {state}, "aud": {c.ISS}, "launch": {launchToken},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.AuthorizeURL+"?"+q.Encode(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.http().Do(req)
	if err != nil {
		return nil, err
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || resp.StatusCode/100 != 3 {
		return nil, fmt.Errorf("simclient: authorize answered %d", resp.StatusCode)
	}
	code := loc.Query().Get("code")
	if code == "" || loc.Query().Get("state") != state {
		return nil, errors.New("simclient: authorize gave no code or another state")
	}
	form := url.Values{
		"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {c.RedirectURI},
		"client_id": {c.ClientID}, "code_verifier": {verifier},
	}
	req, err = http.NewRequestWithContext(ctx, http.MethodPost, c.TokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if c.Secret != "" {
		// RFC 6749 §2.3.1: both parts are form-encoded before Basic encoding.
		req.SetBasicAuth(url.QueryEscape(c.ClientID), url.QueryEscape(c.Secret))
	}
	resp, err = c.http().Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("simclient: token answered %d", resp.StatusCode)
	}
	var tok Token
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil {
		return nil, err
	}
	if tok.AccessToken == "" || tok.Patient == "" {
		return nil, errors.New("simclient: token response without access_token or patient")
	}
	return &tok, nil
}

// Fetched is what a sequential fetch brought back.
type Fetched struct {
	// Patient is the Patient body; Pages are the search page bodies in order.
	Patient []byte
	Pages   [][]byte
	// Results counts the Observation entries over all pages.
	Results int
	// FirstPage is when the first page had arrived, from the start of Fetch.
	FirstPage time.Duration
	// Bytes is the sum of the body sizes as received (compressed when the server compressed).
	Bytes int64
}

// Fetch reads Patient and then every page of the laboratory Observation
// search, one request after another, following next links.
func (c *Client) Fetch(ctx context.Context, tok *Token, pageSize int) (*Fetched, error) {
	start := time.Now()
	out := &Fetched{}
	var err error
	if out.Patient, err = c.get(ctx, tok, c.ISS+"/Patient/"+url.PathEscape(tok.Patient), out); err != nil {
		return nil, err
	}
	next := c.ISS + "/Observation?" + url.Values{
		"patient": {tok.Patient}, "category": {"laboratory"}, "_count": {strconv.Itoa(pageSize)},
	}.Encode()
	for next != "" {
		body, err := c.get(ctx, tok, next, out)
		if err != nil {
			return nil, err
		}
		if len(out.Pages) == 0 {
			out.FirstPage = time.Since(start)
		}
		out.Pages = append(out.Pages, body)
		var b struct {
			Link []struct {
				Relation string `json:"relation"`
				URL      string `json:"url"`
			} `json:"link"`
			Entry []struct {
				Resource struct {
					ResourceType string `json:"resourceType"`
				} `json:"resource"`
			} `json:"entry"`
		}
		if err := json.Unmarshal(body, &b); err != nil {
			return nil, err
		}
		next = ""
		for _, l := range b.Link {
			if l.Relation == "next" {
				next = l.URL
			}
		}
		for _, e := range b.Entry {
			if e.Resource.ResourceType == "Observation" {
				out.Results++
			}
		}
	}
	return out, nil
}

// countingReader counts the bytes read from the wire.
type countingReader struct {
	r io.Reader
	n *int64
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	*c.n += int64(n)
	return n, err
}

func (c *Client) get(ctx context.Context, tok *Token, u string, out *Fetched) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/fhir+json")
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	resp, err := c.http().Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("simclient: FHIR answered %d", resp.StatusCode)
	}
	return io.ReadAll(countingReader{resp.Body, &out.Bytes})
}

func random(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// FixtureClientID is the public client that SimPages registers.
const FixtureClientID = "bench-fixture"

// SimPages runs a simulator in-process on loopback, launches for the patient
// whose name contains name, and returns the search pages it serves at pageSize.
func SimPages(name string, pageSize int) (*Fetched, error) {
	const redirect = "http://127.0.0.1/bench-callback"
	sim, err := ehrsim.New(ehrsim.Options{
		BaseURL: "http://127.0.0.1",
		Clients: []ehrsim.Client{{ID: FixtureClientID, Public: true, RedirectURIs: []string{redirect}}},
	})
	if err != nil {
		return nil, err
	}
	srv := httptest.NewServer(sim)
	defer srv.Close()
	sim.SetBaseURL(srv.URL)
	var pid string
	for _, p := range sim.Patients() {
		if strings.Contains(p.Name, name) {
			pid = p.ID
		}
	}
	if pid == "" {
		return nil, fmt.Errorf("simclient: no simulator patient named %q", name)
	}
	launch, err := sim.NewLaunch(pid, FixtureClientID)
	if err != nil {
		return nil, err
	}
	c := &Client{ISS: sim.ISS(), AuthorizeURL: sim.AuthorizeURL(), TokenURL: sim.TokenURL(), ClientID: FixtureClientID, RedirectURI: redirect}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tok, err := c.Launch(ctx, launch)
	if err != nil {
		return nil, err
	}
	return c.Fetch(ctx, tok, pageSize)
}
