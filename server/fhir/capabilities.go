package fhir

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"smartlabs/server/panics"
)

// Slicing parameters: the search parameters a sliced search may split the
// timeline on.
const (
	ParamLastUpdated = "_lastUpdated"
	ParamDate        = "date"
)

// Capabilities is what an issuer's CapabilityStatement says about the
// Observation search, as far as slicing it goes.
type Capabilities struct {
	// LastUpdated: _lastUpdated is listed for Observation, or for every resource.
	LastUpdated bool
	// Date: date is listed for Observation.
	Date bool
	// DateMissing: the date parameter takes the missing modifier (see ParseCapabilities).
	DateMissing bool
}

// SliceParam is the parameter a search may be sliced on, or "" when none:
// _lastUpdated, which every resource has; otherwise date, but only with
// date:missing=true, which finds the results without a date (pending
// orders) that no date window returns.
func (c Capabilities) SliceParam() string {
	switch {
	case c.LastUpdated:
		return ParamLastUpdated
	case c.Date && c.DateMissing:
		return ParamDate
	}
	return ""
}

// wireCapabilityStatement is the part of a CapabilityStatement read.
type wireCapabilityStatement struct {
	ResourceType string `json:"resourceType"`
	Contained    []struct {
		ResourceType string   `json:"resourceType"`
		ID           string   `json:"id"`
		URL          string   `json:"url"`
		Code         string   `json:"code"`
		Base         []string `json:"base"`
		Modifier     []string `json:"modifier"`
	} `json:"contained"`
	Rest []struct {
		Mode        string             `json:"mode"`
		SearchParam []wireSearchParam  `json:"searchParam"`
		Resource    []wireRestResource `json:"resource"`
	} `json:"rest"`
}

type wireRestResource struct {
	Type        string            `json:"type"`
	SearchParam []wireSearchParam `json:"searchParam"`
}

type wireSearchParam struct {
	Name       string `json:"name"`
	Definition string `json:"definition"`
}

// ParseCapabilities reads what a CapabilityStatement (JSON) says about the
// Observation search of its server-mode rest entries.
//
// R4 has no element that lists the modifiers a server supports, so the
// missing modifier of date counts as supported when the statement says so
// in one of two ways: it lists a search parameter named "date:missing" for
// Observation, or the date parameter's definition points at a
// SearchParameter contained in the statement ("#id", or its url) whose
// modifier list holds "missing". Anything else leaves DateMissing false, and
// the search is then not sliced on date: undated results would be lost.
func ParseCapabilities(body []byte) (Capabilities, error) {
	var w wireCapabilityStatement
	if err := unmarshalOK(body, &w); err != nil {
		return Capabilities{}, err
	}
	if w.ResourceType != "CapabilityStatement" {
		return Capabilities{}, newError(KindMalformed, http.StatusOK, errors.New("answer is not a CapabilityStatement"))
	}
	missingDefs := map[string]bool{}
	for _, c := range w.Contained {
		if c.ResourceType == "SearchParameter" && hasString(c.Modifier, "missing") {
			if c.ID != "" {
				missingDefs["#"+c.ID] = true
			}
			if c.URL != "" {
				missingDefs[c.URL] = true
			}
		}
	}
	var caps Capabilities
	for _, rest := range w.Rest {
		if rest.Mode != "" && rest.Mode != "server" {
			continue
		}
		// Parameters of rest.searchParam apply to every resource type.
		for _, sp := range rest.SearchParam {
			if sp.Name == ParamLastUpdated {
				caps.LastUpdated = true
			}
		}
		for _, r := range rest.Resource {
			if r.Type != "Observation" {
				continue
			}
			for _, sp := range r.SearchParam {
				switch strings.TrimSpace(sp.Name) {
				case ParamLastUpdated:
					caps.LastUpdated = true
				case ParamDate:
					caps.Date = true
					if missingDefs[sp.Definition] {
						caps.DateMissing = true
					}
				case ParamDate + ":missing":
					caps.DateMissing = true
				}
			}
		}
	}
	return caps, nil
}

// ReadCapabilities reads the issuer's CapabilityStatement ([base]/metadata).
func (c *Client) ReadCapabilities(ctx context.Context) (Capabilities, error) {
	base, err := c.base()
	if err != nil {
		return Capabilities{}, err
	}
	// The statement is public: it is read without the launch's token.
	anon := &Client{
		HTTP: c.HTTP, BaseURL: c.BaseURL, ClientID: c.ClientID, RequestTimeout: c.RequestTimeout,
		MaxBodyBytes: c.MaxBodyBytes, MaxAttempts: c.MaxAttempts, RetryBase: c.RetryBase, MaxRetryWait: c.MaxRetryWait,
		Now: c.Now, sleep: c.sleep, rand: c.rand,
	}
	u := base.JoinPath("metadata")
	var caps Capabilities
	err = anon.retry(ctx, func(ctx context.Context) error {
		body, _, err := anon.get(ctx, base, u)
		if err != nil {
			return err
		}
		caps, err = ParseCapabilities(body)
		return err
	})
	return caps, err
}

// Defaults of CapabilityCache.
const (
	DefaultCapabilityTTL = time.Hour
	// capabilityFailTTL is how long a failed read is remembered, so that an
	// EHR whose metadata is down is not asked on every launch.
	capabilityFailTTL = time.Minute
)

// CapabilityCache keeps each issuer's Capabilities for TTL, so that the
// CapabilityStatement is read once per issuer, not per launch; concurrent
// launches share one read. A failed read counts as "no slicing" for a minute.
type CapabilityCache struct {
	// TTL is how long a read is kept; 0 means DefaultCapabilityTTL.
	TTL time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	mu      sync.Mutex
	entries map[string]*capabilityEntry
}

// capabilityEntry is one issuer's read, done or in flight (done open).
type capabilityEntry struct {
	done    chan struct{}
	caps    Capabilities
	err     error
	expires time.Time
}

func (cc *CapabilityCache) now() time.Time {
	if cc.Now != nil {
		return cc.Now()
	}
	return time.Now()
}

// Get returns the Capabilities of c's issuer, read with c when not cached.
// The read runs to its end even when ctx ends first, for the launches
// waiting on it; its own bound is c's request timeout and retries.
func (cc *CapabilityCache) Get(ctx context.Context, c *Client) (Capabilities, error) {
	key := strings.TrimRight(c.BaseURL, "/")
	cc.mu.Lock()
	if cc.entries == nil {
		cc.entries = map[string]*capabilityEntry{}
	}
	e := cc.entries[key]
	if e != nil {
		select {
		case <-e.done:
			if !cc.now().Before(e.expires) {
				e = nil
			}
		default:
		}
	}
	if e == nil {
		e = &capabilityEntry{done: make(chan struct{})}
		cc.entries[key] = e
		go cc.read(context.WithoutCancel(ctx), c, e)
	}
	cc.mu.Unlock()
	select {
	case <-e.done:
		return e.caps, e.err
	case <-ctx.Done():
		return Capabilities{}, ctx.Err()
	}
}

// read fills e from the issuer's metadata.
func (cc *CapabilityCache) read(ctx context.Context, c *Client, e *capabilityEntry) {
	var (
		caps Capabilities
		err  error
	)
	func() {
		// A panic becomes the read's error: the launches waiting on it panic
		// again in their own goroutines, where the fetch's recovery handles it.
		defer panics.Recover(&err)
		caps, err = c.ReadCapabilities(ctx)
	}()
	ttl := cc.TTL
	if ttl <= 0 {
		ttl = DefaultCapabilityTTL
	}
	if err != nil {
		ttl = min(ttl, capabilityFailTTL)
	}
	cc.mu.Lock()
	e.caps, e.err, e.expires = caps, err, cc.now().Add(ttl)
	cc.mu.Unlock()
	close(e.done)
}
