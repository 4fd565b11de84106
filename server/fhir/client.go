// Package fhir is a small FHIR R4 client for one launch: it reads the launch's
// Patient and searches its laboratory Observations page by page.
package fhir

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-json-experiment/json"

	"smartlabs/server/panics"
)

// Defaults for the Client's tunables.
const (
	DefaultPageSize       = 100
	DefaultRequestTimeout = 15 * time.Second
	DefaultMaxBodyBytes   = 20 << 20
	// DefaultMaxPages bounds one search so a server whose next links never
	// end (a relative link that grows on each page, say) cannot keep us busy.
	DefaultMaxPages = 1000
	// maxErrorBody bounds how much of an error answer is read for its OperationOutcome.
	maxErrorBody = 64 << 10
	// codePagingExpired is Epic's OperationOutcome code for an expired paging session.
	codePagingExpired = "4113"
)

// Client talks to one issuer's FHIR server on behalf of one launch.
type Client struct {
	// HTTP is the caller's shared client (connection pool per issuer); nil means http.DefaultClient.
	HTTP *http.Client
	// BaseURL is the issuer's FHIR base (iss), without a trailing slash.
	BaseURL string
	// Token is the bearer access token. It is sent only to BaseURL's origin and never logged.
	Token string
	// ClientID is sent as the Epic-Client-ID header on every request.
	ClientID string
	// PageSize is the _count asked for; 0 means DefaultPageSize.
	PageSize int
	// RequestTimeout bounds one HTTP request, body included; 0 means DefaultRequestTimeout.
	RequestTimeout time.Duration
	// MaxBodyBytes bounds one response body; 0 means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// OnPage, when set, is called after each search page arrives, from the
	// goroutine running Labs, so a view can show results while later pages load.
	OnPage func(Progress)
	// MaxPages bounds the pages of one search (or one window of it); 0 means
	// DefaultMaxPages.
	MaxPages int
	// MaxAttempts bounds the tries of one GET (Patient or a search page);
	// 0 means DefaultMaxAttempts and 1 turns retries off.
	MaxAttempts int
	// RetryBase is the wait before the first retry; it doubles on each further
	// retry, with jitter. 0 means DefaultRetryBase.
	RetryBase time.Duration
	// MaxRetryWait caps one wait between tries; a Retry-After asking for more
	// ends the retries at once. 0 means DefaultMaxRetryWait.
	MaxRetryWait time.Duration
	// MaxParallel bounds this launch's requests in flight at once, the
	// Patient read included, and so the windows of a sliced search fetched
	// side by side. 0 or 1 turns slicing off: the search's pages are then
	// fetched one after another, beside the Patient read.
	MaxParallel int
	// Gate, when set, is shared by every launch at the issuer and bounds the
	// requests in flight to it from this process (the per-issuer bound).
	Gate *Gate
	// Capabilities, when set, caches the issuer's CapabilityStatement across
	// launches; nil reads it for each search that may be sliced.
	Capabilities *CapabilityCache
	// Now is the clock (windows are laid out from it, Retry-After dates read
	// by it); nil means time.Now.
	Now func() time.Time

	// sleep and rand replace the wait between tries and the jitter source in
	// tests; nil means the real ones.
	sleep func(ctx context.Context, d time.Duration) error
	rand  func() float64

	// launchGate is the per-launch bound, made once when slicing is on.
	launchOnce sync.Once
	launch     *Gate
}

// Progress reports one arrived search page.
type Progress struct {
	// Page holds this page's Observations (entered-in-error left out).
	Page []Observation
	// Fetched counts the Observations gathered so far in this search.
	Fetched int
	// Total is the server's Bundle.total, or -1 when it sent none.
	Total int
	// Restarted is true on the first page of a search started again within
	// one Labs call (the paging session expired, or the EHR ignored the
	// slicing parameter): everything reported before it is void.
	Restarted bool
	// First is true on the first report of a Labs call: whatever an earlier
	// call reported (before a token refresh, say) is void.
	First bool
	// Window is the window of a sliced search this page belongs to; nil for
	// the first page and for every page of a search fetched page after page.
	// Windows arrive newest first as far as they are started in that order,
	// but their pages interleave: a page of an older window may come before
	// one of a newer window.
	Window *Window
}

// fhirID is the FHIR id syntax. Ids are checked before use so that a crafted id
// cannot change the request path (e.g. "../").
var fhirID = regexp.MustCompile(`^[A-Za-z0-9\-.]{1,64}$`)

// errRedirectRefused is returned when the server redirects to another origin.
var errRedirectRefused = errors.New("redirect to another origin refused")

func (c *Client) pageSize() int {
	if c.PageSize > 0 {
		return c.PageSize
	}
	return DefaultPageSize
}

func (c *Client) maxPages() int {
	if c.MaxPages > 0 {
		return c.MaxPages
	}
	return DefaultMaxPages
}

func (c *Client) requestTimeout() time.Duration {
	if c.RequestTimeout > 0 {
		return c.RequestTimeout
	}
	return DefaultRequestTimeout
}

func (c *Client) maxBody() int64 {
	if c.MaxBodyBytes > 0 {
		return c.MaxBodyBytes
	}
	return DefaultMaxBodyBytes
}

// base returns the parsed BaseURL.
func (c *Client) base() (*url.URL, error) {
	u, err := url.Parse(strings.TrimRight(c.BaseURL, "/"))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, newError(KindRequest, 0, errors.New("invalid FHIR base URL"))
	}
	return u, nil
}

// sameOrigin reports whether u has the scheme and host (with port) of base.
func sameOrigin(base, u *url.URL) bool {
	return strings.EqualFold(base.Scheme, u.Scheme) && strings.EqualFold(base.Host, u.Host)
}

// httpClient returns a copy of the caller's client that refuses cross-origin
// redirects, because following one would send the bearer token to another server.
// The copy shares the caller's Transport and so its connection pool.
func (c *Client) httpClient(base *url.URL) *http.Client {
	hc := http.DefaultClient
	if c.HTTP != nil {
		hc = c.HTTP
	}
	cp := *hc
	cp.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if !sameOrigin(base, req.URL) {
			return errRedirectRefused
		}
		if len(via) >= 5 {
			return errors.New("too many redirects")
		}
		return nil
	}
	return &cp
}

// limitedReader reads at most n bytes and then fails with errBodyTooLarge,
// so an over-large body is told apart from a truncated one.
type limitedReader struct {
	r io.Reader
	n int64
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		// Probe one byte: a body of exactly the limit is fine.
		var one [1]byte
		if n, _ := l.r.Read(one[:]); n > 0 {
			return 0, errBodyTooLarge
		}
		return l.r.Read(p)
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	return n, err
}

// get sends one GET to u and returns its 2xx body, read whole. The request
// timeout covers reading the body. A non-2xx answer gives an *Error carrying
// the OperationOutcome the server sent, if any (its outcomes in oo).
func (c *Client) get(ctx context.Context, base, u *url.URL) (body []byte, oo *wireOperationOutcome, err error) {
	ctx, cancel := context.WithTimeout(ctx, c.requestTimeout())
	defer cancel()

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, nil, newError(KindRequest, 0, errors.New("could not build the request"))
	}
	req.Header.Set("Accept", "application/fhir+json")
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	if c.ClientID != "" {
		req.Header.Set("Epic-Client-ID", c.ClientID)
	}
	resp, err := c.httpClient(base).Do(req)
	if err != nil {
		fe := transportError(ctx, err)
		// The server was not reached or dropped the connection: a GET may be sent again.
		fe.transient = fe.Kind == KindUpstream && !errors.Is(err, errRedirectRefused)
		return nil, nil, fe
	}
	defer resp.Body.Close()

	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		fe := newError(kindForStatus(resp.StatusCode), resp.StatusCode, nil)
		fe.retryAfter = resp.Header.Get("Retry-After")
		if resp.StatusCode == http.StatusTooManyRequests {
			fe.Public = publicThrottled
		}
		// The error body is read only for its OperationOutcome codes; a failure here is ignored.
		var w wireOperationOutcome
		if json.UnmarshalRead(io.LimitReader(resp.Body, maxErrorBody), &w) == nil && w.ResourceType == "OperationOutcome" {
			oo = &w
			fe.Codes = outcomeCodes(&w)
		}
		return nil, oo, fe
	}

	body, err = readBody(resp.Body, resp.ContentLength, c.maxBody())
	if err != nil {
		fe := decodeError(ctx, err)
		fe.Status = resp.StatusCode
		return nil, nil, fe
	}
	return body, nil, nil
}

// readBody reads a whole body of at most limit bytes; size is its announced
// length (-1 when unknown), used only to allocate once.
func readBody(r io.Reader, size, limit int64) ([]byte, error) {
	var buf bytes.Buffer
	if size > 0 && size <= limit {
		buf.Grow(int(size) + bytes.MinRead)
	}
	_, err := buf.ReadFrom(&limitedReader{r: r, n: limit})
	return buf.Bytes(), err
}

// unmarshal decodes one JSON document with github.com/go-json-experiment/json
// (JSON v2): one pass over the bytes, about 2.5 times faster than
// encoding/json here, with stricter defaults that suit patient data: object
// names match case-sensitively, a duplicated name is an error (a second
// "subject" cannot hide behind the first), and invalid UTF-8 is refused.
// Unknown fields are ignored.
func unmarshal(data []byte, v any) error {
	return json.Unmarshal(data, v)
}

// unmarshalOK decodes the body of a 200 answer into v; a failure is
// decodeError's *Error, with status 200.
func unmarshalOK(body []byte, v any) error {
	if err := unmarshal(body, v); err != nil {
		fe := decodeError(context.Background(), err)
		fe.Status = http.StatusOK
		return fe
	}
	return nil
}

// decodeBody reads one JSON document of at most limit bytes from r into v.
func decodeBody(r io.Reader, limit int64, v any) error {
	data, err := readBody(r, -1, limit)
	if err != nil {
		return err
	}
	return unmarshal(data, v)
}

// Patient reads Patient/{id}. A Patient whose id differs from id is refused with KindWrongPatient.
func (c *Client) Patient(ctx context.Context, id string) (*Patient, error) {
	if !fhirID.MatchString(id) {
		return nil, newError(KindRequest, 0, errors.New("invalid patient id"))
	}
	base, err := c.base()
	if err != nil {
		return nil, err
	}
	u := base.JoinPath("Patient", id)
	var w wirePatient
	err = c.retry(ctx, func(ctx context.Context) error {
		done, err := c.admit(ctx)
		if err != nil {
			return err
		}
		body, _, err := c.get(ctx, base, u)
		done(err)
		if err != nil {
			return err
		}
		w = wirePatient{}
		if err := unmarshal(body, &w); err != nil {
			fe := decodeError(ctx, err)
			fe.Status = http.StatusOK
			return fe
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if w.ResourceType != "Patient" {
		return nil, newError(KindMalformed, http.StatusOK, errors.New("answer is not a Patient"))
	}
	// Showing another patient's data is the worst failure this app can have.
	if w.ID != id {
		return nil, newError(KindWrongPatient, http.StatusOK, errors.New("patient id differs from the one asked for"))
	}
	return toPatient(&w), nil
}

// page is one decoded page of an Observation search.
type page struct {
	observations []Observation
	// times are the times of each observation a sliced search checks.
	times    []entryTimes
	outcomes []Outcome
	next     string
	total    int // Bundle.total, -1 when absent
}

// fetchFunc fetches and decodes one search page. It is the unit a retry wrapper wraps.
type fetchFunc func(ctx context.Context, u *url.URL) (*page, *wireOperationOutcome, error)

// fetchPage fetches and decodes one search page, checking every Observation's subject.
func (c *Client) fetchPage(base *url.URL, patientID string) fetchFunc {
	return func(ctx context.Context, u *url.URL) (*page, *wireOperationOutcome, error) {
		body, oo, err := c.get(ctx, base, u)
		if err != nil {
			return nil, oo, err
		}
		p, err := decodeBundle(body, patientID)
		return p, nil, err
	}
}

// decodeBundle decodes a searchset Bundle into a page: by the streaming
// decoder (about twice as fast, see stream.go) when it can, otherwise, for
// nulls, wrong types or bad JSON, by decodeBundleReflect, which sets the
// behaviour and the error.
func decodeBundle(body []byte, patientID string) (*page, error) {
	p, err := decodeBundleStream(body, patientID)
	if err == errFallback {
		return decodeBundleReflect(body, patientID)
	}
	return p, err
}

// decodeBundleReflect decodes a searchset Bundle into a page in one pass: each entry's
// resource is parsed once, into the union of the fields of the types a search
// returns. Only when that fails on a field's type (an included resource of
// another type can reuse a name with another shape) is the Bundle decoded
// again entry by entry, so a stray resource cannot spoil the page.
func decodeBundleReflect(body []byte, patientID string) (*page, error) {
	var b wireBundle
	err := unmarshal(body, &b)
	var se *json.SemanticError
	if errors.As(err, &se) {
		return decodeBundleByEntry(body, patientID)
	}
	if err != nil {
		fe := decodeError(context.Background(), err)
		fe.Status = http.StatusOK
		return nil, fe
	}
	if b.ResourceType != "Bundle" {
		return nil, newError(KindMalformed, http.StatusOK, errors.New("answer is not a Bundle"))
	}
	p := newPage(&b)
	for i := range b.Entry {
		r := b.Entry[i].Resource
		if r == nil {
			continue
		}
		switch r.ResourceType {
		case "Observation":
			if err := p.addObservation(&r.wireObservation, patientID, i); err != nil {
				return nil, err
			}
		case "OperationOutcome":
			p.outcomes = append(p.outcomes, toOutcomes(&wireOperationOutcome{ResourceType: r.ResourceType, Issue: r.Issue})...)
		default:
			// Included resources of other types are not used.
		}
	}
	return p, nil
}

// newPage starts a page with a Bundle's total and next link.
func newPage(b *wireBundle) *page {
	p := &page{total: -1}
	if b.Total != nil {
		p.total = *b.Total
	}
	p.next = nextLink(b.Link)
	p.observations = make([]Observation, 0, len(b.Entry))
	p.times = make([]entryTimes, 0, len(b.Entry))
	return p
}

// nextLink is the URL of a Bundle's next link, "" when it has none.
func nextLink(links []wireLink) string {
	next := ""
	for _, l := range links {
		if l.Relation == "next" {
			next = l.URL
		}
	}
	return next
}

// addObservation checks entry i's subject and adds it unless entered in error.
func (p *page) addObservation(w *wireObservation, patientID string, i int) error {
	// Every Observation must be about the launch's patient; one that is not
	// means the server is confused, and nothing from it can be trusted.
	if !isPatientRef(w.Subject.Reference, patientID) {
		return newError(KindWrongPatient, http.StatusOK, fmt.Errorf("entry %d: subject is not the launch patient", i))
	}
	if w.Status != "entered-in-error" {
		p.observations = append(p.observations, toObservation(w))
		p.times = append(p.times, timesOf(w))
	}
	return nil
}

// decodeRawBundle decodes a 200 answer as a Bundle whose entries are left raw.
func decodeRawBundle(body []byte) (*wireBundleRaw, error) {
	var b wireBundleRaw
	if err := unmarshalOK(body, &b); err != nil {
		return nil, err
	}
	if b.ResourceType != "Bundle" {
		return nil, newError(KindMalformed, http.StatusOK, errors.New("answer is not a Bundle"))
	}
	return &b, nil
}

// decodeBundleByEntry is the slow path of decodeBundleReflect: the Bundle with raw
// entries, then each entry by its resourceType.
func decodeBundleByEntry(body []byte, patientID string) (*page, error) {
	b, err := decodeRawBundle(body)
	if err != nil {
		return nil, err
	}
	p := newPage(&wireBundle{Total: b.Total, Link: b.Link})
	for i, e := range b.Entry {
		var head resourceHead
		if err := unmarshal(e.Resource, &head); err != nil {
			if len(e.Resource) == 0 {
				continue
			}
			return nil, newError(KindMalformed, http.StatusOK, fmt.Errorf("entry %d: unreadable resource", i))
		}
		switch head.ResourceType {
		case "Observation":
			var w wireObservation
			if err := unmarshalOK(e.Resource, &w); err != nil {
				return nil, err
			}
			if err := p.addObservation(&w, patientID, i); err != nil {
				return nil, err
			}
		case "OperationOutcome":
			var w wireOperationOutcome
			if err := unmarshalOK(e.Resource, &w); err != nil {
				return nil, err
			}
			p.outcomes = append(p.outcomes, toOutcomes(&w)...)
		default:
			// Included resources of other types are not used.
		}
	}
	return p, nil
}

// isPatientRef reports whether ref points at Patient/{id}, relatively or as a full URL.
func isPatientRef(ref, id string) bool {
	want := "Patient/" + id
	return ref == want || strings.HasSuffix(ref, "/"+want)
}

// Labs searches the patient's laboratory Observations and follows every next
// link. It never returns an error value: faults are reported in the result,
// with whatever arrived before them, except a wrong-patient fault, which
// discards everything.
//
// With MaxParallel above 1, a search with more than one page is sliced: the
// timeline is split into windows, each searched on its own, several at once
// (see sliced). Otherwise, or when the issuer cannot slice, the pages are
// fetched one after another.
func (c *Client) Labs(ctx context.Context, patientID string) *LabsResult {
	if !fhirID.MatchString(patientID) {
		return &LabsResult{Incomplete: true, Err: newError(KindRequest, 0, errors.New("invalid patient id"))}
	}
	base, err := c.base()
	if err != nil {
		return &LabsResult{Incomplete: true, Err: err}
	}
	lc := &labsCall{c: c, base: base, patientID: patientID, total: -1,
		fetch: c.retrying(c.gated(c.fetchPage(base, patientID)))}
	lc.first = lc.searchURL(nil)
	if c.slicing() {
		lc.caps = c.readCapabilities(ctx)
	}
	return lc.run(ctx)
}

// labsCall is one call of Labs.
type labsCall struct {
	c         *Client
	base      *url.URL
	first     *url.URL
	patientID string
	fetch     fetchFunc
	// caps delivers the issuer's capabilities when the search may be sliced; nil otherwise.
	caps <-chan capsRead
	// param is the slicing parameter, once the search is sliced.
	param string
	// reported is set once a page was reported; total is the first page's Bundle.total.
	reported bool
	total    int
}

// searchURL is the first page's URL of the laboratory search, restricted to
// window w when it is not nil.
func (lc *labsCall) searchURL(w *Window) *url.URL {
	u := lc.base.JoinPath("Observation")
	v := url.Values{
		"patient":  {lc.patientID},
		"category": {"laboratory"},
		"_count":   {strconv.Itoa(lc.c.pageSize())},
	}
	if w != nil {
		w.query(lc.param, v)
	}
	u.RawQuery = v.Encode()
	return u
}

// report hands one page to OnPage, marking the call's first report.
func (lc *labsCall) report(p Progress) {
	first := !lc.reported
	lc.reported = true
	if lc.c.OnPage != nil {
		p.First = first
		lc.c.OnPage(p)
	}
}

// run fetches the search's first page, then the rest sliced or page after
// page; it restarts once if the paging session expires, and falls back to
// page after page when the EHR ignores the slicing parameter.
func (lc *labsCall) run(ctx context.Context) *LabsResult {
	var divert func(context.Context, *page) bool
	if lc.caps != nil {
		divert = lc.divert
	}
	res, restart, probe := lc.searchOnce(ctx, false, divert)
	if probe != nil {
		var fallback bool
		res, fallback = lc.sliced(ctx, res, probe)
		if !fallback {
			return finish(res)
		}
		// The EHR ignored the slicing parameter: fetch everything again page
		// after page, reported as a restart so that what came before is void.
		param, windows := res.SlicedBy, res.Windows
		res, restart, _ = lc.searchOnce(ctx, true, nil)
		res.SlicedBy, res.Windows, res.FellBack = param, windows, true
	}
	if restart {
		// Epic's paging session expired mid-search: start again from page 1 with
		// an empty list so that no result appears twice.
		fellBack, param, windows := res.FellBack, res.SlicedBy, res.Windows
		res, _, _ = lc.searchOnce(ctx, true, nil)
		res.SlicedBy, res.Windows, res.FellBack = param, windows, fellBack
	}
	return finish(res)
}

// divert decides, after the first page, whether the rest of the search is
// sliced: when the issuer's capabilities name a slicing parameter.
func (lc *labsCall) divert(ctx context.Context, _ *page) bool {
	select {
	case r := <-lc.caps:
		var pe *panics.Error
		if errors.As(r.err, &pe) {
			panic(pe)
		}
		lc.param = r.caps.SliceParam()
	case <-ctx.Done():
		return false
	}
	return lc.param != ""
}

// finish settles a result's outcomes and completeness.
func finish(res *LabsResult) *LabsResult {
	res.Outcomes = dedupeOutcomes(res.Outcomes)
	for _, o := range res.Outcomes {
		if o.Incomplete {
			res.Incomplete = true
		}
	}
	if res.Err != nil {
		res.Incomplete = true
	}
	return res
}

// maxPrealloc bounds the results allocated ahead from a Bundle's total.
const maxPrealloc = 5000

// searchOnce follows the pages from the first. restart is true when a next
// link answered Epic's paging-session-expired code. divert, when set, is
// asked after a first page that has a next link whether the search goes on
// sliced instead: searchOnce then returns that page as probe.
func (lc *labsCall) searchOnce(ctx context.Context, restarted bool, divert func(context.Context, *page) bool) (res *LabsResult, restart bool, probe *page) {
	res = &LabsResult{}
	seen := map[string]bool{}
	u := lc.first
	for {
		if res.Pages >= lc.c.maxPages() || seen[u.String()] {
			res.Err = newError(KindMalformed, 0, errors.New("paging does not end"))
			return res, false, nil
		}
		seen[u.String()] = true

		p, oo, err := lc.fetch(ctx, u)
		if err != nil {
			if KindOf(err) == KindWrongPatient {
				return &LabsResult{Incomplete: true, Err: err, Pages: res.Pages}, false, nil
			}
			if u != lc.first && pagingExpired(err) {
				res.Err = err
				return res, true, nil
			}
			if oo != nil {
				res.Outcomes = append(res.Outcomes, toOutcomes(oo)...)
			}
			res.Err = err
			return res, false, nil
		}
		res.Pages++
		if res.Pages == 1 {
			lc.total = p.total
		}
		if res.Observations == nil && p.total > len(p.observations) {
			// Bundle.total sizes the list once; it is the server's claim, so
			// the allocation it can cause is bounded.
			res.Observations = make([]Observation, 0, min(p.total, maxPrealloc))
		}
		res.Observations = append(res.Observations, p.observations...)
		res.Outcomes = append(res.Outcomes, p.outcomes...)
		lc.report(Progress{Page: p.observations, Fetched: len(res.Observations), Total: p.total, Restarted: restarted && res.Pages == 1})
		if p.next == "" {
			return res, false, nil
		}
		if res.Pages == 1 && divert != nil && divert(ctx, p) {
			return res, false, p
		}
		next, err := u.Parse(p.next)
		// The next link is opaque, but it must stay on the issuer's origin:
		// the bearer token is never sent anywhere else.
		if err != nil || !sameOrigin(lc.base, next) {
			res.Err = newError(KindMalformed, 0, errors.New("next link points to another origin"))
			return res, false, nil
		}
		u = next
	}
}

// pagingExpired reports whether err is Epic's answer to a next link whose
// paging session expired.
func pagingExpired(err error) bool {
	var fe *Error
	return errors.As(err, &fe) && fe.Status >= 400 && fe.Status < 500 && hasString(fe.Codes, codePagingExpired)
}

// dedupeOutcomes drops repeated outcomes (Epic may repeat one on every page).
func dedupeOutcomes(in []Outcome) []Outcome {
	if len(in) == 0 {
		return nil
	}
	seen := map[Outcome]bool{}
	out := in[:0:0]
	for _, o := range in {
		if !seen[o] {
			seen[o] = true
			out = append(out, o)
		}
	}
	return out
}

func hasString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
