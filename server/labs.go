package server

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"github.com/a-h/templ"
	"github.com/labstack/echo/v4"

	"smartlabs/components/labs"
	"smartlabs/components/layout"
	"smartlabs/server/fhir"
	"smartlabs/server/labscache"
	"smartlabs/server/labsview"
	"smartlabs/server/metrics"
	"smartlabs/server/session"
)

var launchIDRe = regexp.MustCompile(`^[A-Za-z0-9_-]{22}$`)

// analyteKeyRe is the shape of an analyte key in a drill-down URL (see
// labsview's test identity): a LOINC code, "c<org>-<env>-<code>" for an Epic
// component code, or "n" or "k" and a hex hash. Letters, digits and dashes
// only, at most 60 characters: never a dot, slash or percent sign.
var analyteKeyRe = regexp.MustCompile(`^(?:[0-9]{1,10}-[0-9]|[nk][0-9a-f]{16}|c[0-9]{1,12}-[0-9]{1,12}-[0-9A-Za-z]{1,32})$`)

// loadLaunch returns the launch named in the path if it belongs to this
// browser and its EHR is still configured.
func (s *Server) loadLaunch(c echo.Context) (*session.Launch, error) {
	id := c.Param("launch")
	if !launchIDRe.MatchString(id) {
		return nil, session.ErrNoLaunch
	}
	l, err := s.sessions.LoadLaunch(c.Request().Context(), id)
	if err != nil {
		return nil, err
	}
	if s.cfg.Lookup(l.ISS) == nil {
		return nil, issuerGone(l.ID)
	}
	// The page may be framed only by this launch's own EHR (its frame_ancestors).
	s.setRequestIssuer(c, l.ISS)
	// An expired access token is not the end: fetchLaunchData refreshes it, or shows the ended page.
	return l, nil
}

// handleLabsPage handles "GET /l/:launch": the labs page of one launch, the
// summary or (view=all) every result, filtered by the query. HTMX requests get
// the #labs fragment, or only #labs-results when that is their target.
func (s *Server) handleLabsPage(c echo.Context) error {
	return s.serveLabs(c, "", false)
}

// handleAnalytePage handles "GET /l/:launch/a/:key": one analyte's drill-down,
// as a page or an HTMX fragment. It is deep-linkable: the full page shows the
// same state as the swapped fragment, so the back button can reload it.
func (s *Server) handleAnalytePage(c echo.Context) error {
	key := c.Param("key")
	if !analyteKeyRe.MatchString(key) {
		return echo.NewHTTPError(http.StatusNotFound)
	}
	return s.serveLabs(c, key, false)
}

// handleLabsFragment handles "GET /l/:launch/labs": Refresh and Retry. It
// drops the launch's cached results, fetches them again from the EHR, and
// answers the #labs fragment of the view named by the query.
func (s *Server) handleLabsFragment(c echo.Context) error {
	return s.serveLabs(c, "", true)
}

// serveLabs answers every labs view from the launch's cached results; a cache
// miss (first view, another replica, an evicted launch) starts the fetch.
// The first answer waits only for the first page: later pages arrive while
// the view polls.
func (s *Server) serveLabs(c echo.Context, key string, refresh bool) error {
	h := c.Response().Header()
	h.Set("Vary", "HX-Request, HX-Target")
	l, err := s.loadLaunch(c)
	if err != nil {
		return err
	}
	if err := s.checkLive(c.Request().Context(), l); err != nil {
		return err
	}
	v := parseView(c.QueryParams(), key)

	if old := s.labsCache.Get(l.ID); old != nil && old.Failed() && !isHTMX(c) {
		// A fetch that failed (panicked) stays cached, so that polls and
		// views show its error instead of fetching again; a reload of the
		// page, like Refresh, is the user asking to try again.
		refresh = true
	}
	e, err := s.labsCache.Start(backgroundContext(c), l.ID, cacheOwner(l.Browser), refresh, s.fetchLabs(l, requestID(c)))
	if err != nil {
		return busyError(err)
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), s.cfg.FHIR.ViewTimeout)
	defer cancel()
	if !isHTMX(c) && !e.Ready() {
		// The launch is live and its results are on their way: the page
		// begins now, so the browser loads its styles and script meanwhile.
		return s.streamLabsPage(c, ctx, l, v, e)
	}
	if err := e.Wait(ctx); err != nil {
		return waitTimeout(err)
	}
	var kind string
	switch {
	case isHTMX(c) && c.Request().Header.Get("HX-Target") == "labs-results":
		kind = "results"
		if !refresh {
			// The address bar gets the canonical URL of the view, so it can be bookmarked and reloaded.
			h.Set("HX-Push-Url", v.url(l.ID))
		}
	case isHTMX(c):
		kind = "fragment"
	default:
		kind = "page"
	}
	// A complete list no longer changes, so a view of it is rendered once and
	// kept with the results; the minute is part of the key because date
	// presets ("last 7 days") move with the clock.
	memoKey := kind + "\n" + v.url(l.ID) + "\n" + s.now().In(s.loc).Format("2006-01-02T15:04")
	var shell layout.Props
	if kind == "page" {
		// A page's head holds the theme as this server knows it now: inline
		// (allowed by its hash in this response's CSP), linked, or none.
		shell = s.labsLayout(c, l, v)
		memoKey += "\n" + shell.ThemePath + "\n" + shell.ThemeCSS
	}
	if b, ok := e.Memo(memoKey); ok {
		return c.HTMLBlob(http.StatusOK, b)
	}
	snap := e.Snapshot()
	props, err := s.viewProps(l, snap, v)
	if err != nil {
		return err
	}
	if !snap.Done {
		// The rest arrives as updates of what this answer shows.
		if err := s.followLive(c.Request().Context(), e, l.ID, v, snap, &props); err != nil {
			return err
		}
	}
	var comp templ.Component
	switch kind {
	case "results":
		comp = labs.PolledResults(props)
	case "fragment":
		comp = labs.Fragment(props)
	default:
		comp = layout.Page(shell, labs.View(props))
	}
	var buf bytes.Buffer
	if err := comp.Render(c.Request().Context(), &buf); err != nil {
		return err
	}
	if snap.Done {
		e.SetMemo(memoKey, buf.Bytes())
	}
	return c.HTMLBlob(http.StatusOK, buf.Bytes())
}

// waitTimeout is the page shown when no result arrived within the view's timeout.
func waitTimeout(err error) *AppError {
	return &AppError{Status: http.StatusGatewayTimeout, Reason: "labs.wait_timeout", Title: "The EHR did not answer in time",
		Public: "smartlabs asked the EHR for this patient's results but no answer came in time. Refresh to try again.", Err: err}
}

// streamMark stands where the labs view goes in a page streamed in two parts.
const streamMark = "<!--smartlabs:labs-->"

// streamLabsPage answers the full page of view v while its first results
// are still on their way: the head (with the styles and script), the shell
// and the banner's reserved space first, flushed at once; then, once the
// first page arrived, the view. Each part is rendered whole before it is
// written. An error after the first part (no answer in time, the fetch
// failed, another patient's data) cannot change the status any more: it is
// written in the view's place as the complete error fragment, which app.css
// shows alone, and logged as a failed request.
func (s *Server) streamLabsPage(c echo.Context, ctx context.Context, l *session.Launch, v labsRequest, e *labscache.Entry) error {
	shell := labs.Props{BannerPending: l.NeedPatientBanner}
	mark := templ.ComponentFunc(func(_ context.Context, w io.Writer) error {
		_, err := io.WriteString(w, streamMark)
		return err
	})
	var page bytes.Buffer
	if err := layout.Page(s.labsLayout(c, l, v), labs.Frame(shell, mark)).Render(ctx, &page); err != nil {
		return err
	}
	head, tail, ok := bytes.Cut(page.Bytes(), []byte(streamMark))
	if !ok {
		return errors.New("labs page: the view's place is missing")
	}
	w := c.Response()
	w.Header().Set(echo.HeaderContentType, echo.MIMETextHTMLCharsetUTF8)
	w.WriteHeader(http.StatusOK)
	if _, err := w.Write(head); err != nil {
		return nil // the browser went away
	}
	w.Flush()

	body, err := s.lateView(ctx, l, v, e)
	if err != nil {
		body = s.errorFragment(c, err)
	}
	_, _ = w.Write(append(body, tail...))
	return nil
}

// lateView renders the view of a streamed page once its first results arrived.
func (s *Server) lateView(ctx context.Context, l *session.Launch, v labsRequest, e *labscache.Entry) ([]byte, error) {
	if err := e.Wait(ctx); err != nil {
		return nil, waitTimeout(err)
	}
	snap := e.Snapshot()
	props, err := s.viewProps(l, snap, v)
	if err != nil {
		return nil, err
	}
	if !snap.Done {
		if err := s.followLive(ctx, e, l.ID, v, snap, &props); err != nil {
			return nil, err
		}
	}
	return renderPart(ctx, labs.LateView(props))
}

// busyRetryAfter is the Retry-After of the busy page, in seconds.
const busyRetryAfter = 10

// busyError is the page shown when the results of the launches being fetched
// already fill the server's memory budget (labscache.ErrBusy).
func busyError(err error) *AppError {
	return &AppError{Status: http.StatusServiceUnavailable, Reason: "labs.busy", Title: "smartlabs is busy",
		Public:     "smartlabs is loading results for many patients right now. Try again in a few seconds.",
		RetryAfter: busyRetryAfter, Err: err}
}

// labsRequest is the view one request asks for.
type labsRequest struct {
	mode   labs.Mode
	filter labs.Filter
	// key names the analyte of a drill-down; empty otherwise.
	key string
	// col is the flowsheet's column offset.
	col int
	// page is the page of All results (1 is the first).
	page int
}

// parseView is the view that query q asks for; key names the analyte of a
// drill-down, "" otherwise.
func parseView(q url.Values, key string) labsRequest {
	v := labsRequest{mode: labsview.ParseMode(q), filter: labsview.ParseFilter(q), key: key}
	if v.mode == labs.ModeFlowsheet && key == "" {
		v.col = labsview.ParseColumn(q)
	}
	if v.mode == labs.ModeList && key == "" {
		v.page = labsview.ParsePage(q)
	}
	return v
}

// url is the canonical URL of the view.
func (v labsRequest) url(id string) string {
	switch {
	case v.key != "":
		return labs.AnalyteURL(labsPath(id), v.key, v.mode, v.filter)
	case v.mode == labs.ModeFlowsheet:
		return labs.FlowsheetURL(labsPath(id), v.filter, v.col)
	case v.mode == labs.ModeList:
		return labs.ListURL(labsPath(id), v.filter, v.page)
	}
	return labs.PageURL(labsPath(id), v.mode, v.filter)
}

// checkLive refuses a launch whose grant is over, so cached results are never
// shown after the EHR's access has ended.
func (s *Server) checkLive(ctx context.Context, l *session.Launch) error {
	if l.AccessToken == "" {
		s.labsCache.Forget(l.ID)
		return sessionEnded(l.ID, errors.New("launch already ended"))
	}
	if !l.Expiry.IsZero() && !s.now().Before(l.Expiry) && l.RefreshToken == "" {
		s.labsCache.Forget(l.ID)
		return s.endLaunch(ctx, l, errors.New("access token expired and no refresh token"))
	}
	return nil
}

// labsLayout is the page shell of a labs view, with the EHR's theme when it
// sent one we may use: inline when this server already holds it (the page's
// CSP then allows it by its hash), else linked (its request fetches it).
func (s *Server) labsLayout(c echo.Context, l *session.Launch, v labsRequest) layout.Props {
	title := "Lab results"
	switch {
	case v.key != "":
		title = "Lab result history"
	case v.mode == labs.ModeFlowsheet:
		title = "Lab results flowsheet"
	}
	p := s.layoutProps(title)
	u := s.themeURL(l)
	if u == "" {
		return p
	}
	css, known := s.themes.get(u, s.now())
	switch {
	case known && css == nil:
		// The EHR's style document gave no theme: our default, and no request for it.
	case known && layout.CanInline(string(css)):
		p.ThemeCSS = string(css)
		c.Set(ctxStyleHash, layout.StyleHash(p.ThemeCSS))
	default:
		p.ThemePath = labsPath(l.ID) + "/theme.css"
	}
	return p
}

// fetchLabs returns the fetch that fills a launch's cache entry page by page.
// It audits once per fetch from the EHR: filtering and drilling down re-show
// the same data to the same user within the launch and are not new accesses.
func (s *Server) fetchLabs(l *session.Launch, reqID string) labscache.Fetch {
	return func(ctx context.Context, e *labscache.Entry) {
		ctx, cancel := context.WithTimeout(ctx, s.cfg.FHIR.ViewTimeout)
		defer cancel()
		data, ferr := s.fetchLaunchData(ctx, l, func(p fhir.Progress) {
			// A page that starts a search voids the pages before it: the first
			// of a fetch (the retry after a token refresh starts a new one), or
			// a restart within one (paging expired, or the EHR ignored the
			// slicing parameter). Pages of a sliced search come in any order
			// of their windows, each result once.
			fresh := p.First || p.Restarted
			e.AddPage(labsview.Results(p.Page, s.loc), p.Fetched, p.Total, fresh)
		})
		if ferr == nil && data.Labs != nil && e.Len() != countShown(data.Labs.Observations) {
			// The pages reported do not add up (a client without progress reports): use the whole result.
			n := len(data.Labs.Observations)
			e.AddPage(labsview.Results(data.Labs.Observations, s.loc), n, n, true)
		}
		var reports []labsview.Report
		reportsOutcome := ""
		if ferr == nil {
			reports, reportsOutcome = s.reportsOf(l, reqID, data)
		}
		s.auditFetch(l, reqID, data, ferr, reportsOutcome, len(reports))
		e.Finish(labscache.Final{Patient: data.Patient, PatientErr: data.PatientErr, Labs: data.Labs, Reports: reports, Err: ferr, At: s.now()})
		if ferr != nil || wrongPatient(data) || deniedAll(data) {
			// A failed fetch is not kept: the requests waiting on it get its error,
			// the next one fetches again.
			e.Drop()
		}
	}
}

// countShown counts the observations a view shows (entered-in-error left out).
func countShown(obs []fhir.Observation) int {
	n := 0
	for i := range obs {
		if obs[i].Status != "entered-in-error" {
			n++
		}
	}
	return n
}

// auditFetch writes the audit event of one fetch of a launch's labs; the
// lab report search, when it ran, is part of it (reportsOutcome, reports).
func (s *Server) auditFetch(l *session.Launch, reqID string, data launchData, ferr error, reportsOutcome string, reports int) {
	ev := AuditEvent{Who: l.FHIRUser, Patient: l.Patient, What: "labs.view", RequestID: reqID, When: s.now(),
		ReportsOutcome: reportsOutcome, Reports: reports}
	if is := s.cfg.Lookup(l.ISS); is != nil {
		ev.Issuer = is.ISS
	}
	switch {
	case ferr != nil:
		ev.Outcome = "error"
	case wrongPatient(data):
		ev.Outcome = "wrong-patient"
	case deniedAll(data):
		ev.Outcome = "denied"
	default:
		ev.Outcome, ev.Results = "complete", countShown(data.Labs.Observations)
		if data.Labs.Incomplete {
			ev.Outcome = "incomplete"
		}
	}
	s.audit.Record(ev)
}

// reportsOf returns the lab reports of a fetch, or nil when the grant
// lacks their scope or their search failed: the views are then exactly
// what they are without reports. Either case is logged once (in fixed
// words, never ids or patient data) and counted. audit is the search's
// outcome for the audit event: "" when it did not run, else complete,
// denied or error.
func (s *Server) reportsOf(l *session.Launch, reqID string, data launchData) (reports []labsview.Report, audit string) {
	name := ""
	if issuer := s.cfg.Lookup(l.ISS); issuer != nil {
		name = issuer.Name
	}
	res := data.Reports
	if res == nil {
		s.metrics.ReportSearch(name, metrics.ReportsNotGranted)
		s.log.Info().Str("issuer", name).Str("request_id", reqID).
			Msg("lab reports not searched: the EHR did not grant patient/DiagnosticReport.read; panels come from orders")
		return nil, ""
	}
	if res.Failed() {
		outcome := reportFailure(res)
		s.metrics.ReportSearch(name, outcome)
		s.log.Warn().Str("issuer", name).Str("request_id", reqID).Str("reason", outcome).
			Msg("lab reports search failed; panels come from orders")
		if outcome == metrics.ReportsForbidden {
			return nil, "denied"
		}
		return nil, "error"
	}
	s.metrics.ReportSearch(name, metrics.OK)
	return labsview.Reports(res.Reports, s.loc), "complete"
}

// reportFailure names why a report search failed, in the metric's words.
func reportFailure(res *fhir.ReportsResult) string {
	if res.Err == nil {
		return metrics.ReportsErrorOutcome
	}
	switch fhir.KindOf(res.Err) {
	case fhir.KindForbidden, fhir.KindUnauthorized:
		return metrics.ReportsForbidden
	case fhir.KindRequest, fhir.KindNotFound:
		return metrics.ReportsRefused
	case fhir.KindWrongPatient:
		return metrics.ReportsWrongPatient
	case fhir.KindMalformed:
		return metrics.ReportsMalformed
	case fhir.KindTimeout:
		return metrics.ReportsTimeout
	default:
		return metrics.Error
	}
}

// wrongPatient reports whether the EHR sent data of another patient.
func wrongPatient(d launchData) bool {
	var fe *fhir.Error
	return errors.As(d.PatientErr, &fe) && fe.Kind == fhir.KindWrongPatient ||
		d.Labs != nil && errors.As(d.Labs.Err, &fe) && fe.Kind == fhir.KindWrongPatient
}

// deniedAll reports whether nothing arrived because the EHR refused the token.
func deniedAll(d launchData) bool {
	var fe *fhir.Error
	return d.Labs == nil || len(d.Labs.Observations) == 0 && errors.As(d.Labs.Err, &fe) && fe.Kind == fhir.KindUnauthorized
}

// viewProps builds the view model of request v from a snapshot of the launch's results.
func (s *Server) viewProps(l *session.Launch, snap labscache.Snapshot, v labsRequest) (labs.Props, error) {
	fin := snap.Final
	if snap.Done {
		if fin.Err != nil {
			return labs.Props{}, fin.Err
		}
		var fe *fhir.Error
		// Data for another patient is never shown, not even in part.
		if wrongPatient(launchData{Patient: fin.Patient, PatientErr: fin.PatientErr, Labs: fin.Labs}) {
			if !errors.As(fin.PatientErr, &fe) || fe.Kind != fhir.KindWrongPatient {
				errors.As(fin.Labs.Err, &fe)
			}
			return labs.Props{}, fe
		}
		// Nothing at all and an authorization failure: the session is over, not the list incomplete.
		if len(snap.Results) == 0 && fin.Labs != nil && errors.As(fin.Labs.Err, &fe) && fe.Kind == fhir.KindUnauthorized {
			return labs.Props{}, fe
		}
	}

	base := labsPath(l.ID)
	p := labs.Props{
		LaunchID:   l.ID,
		BasePath:   base,
		Mode:       v.mode,
		Filter:     v.filter,
		Total:      len(snap.Results),
		Statuses:   labsview.Statuses(snap.Results),
		RefreshURL: base + "/labs" + queryOf(v.url(l.ID)),
		LogoutURL:  base + "/logout",
		TimeZone:   s.loc.String(),
	}
	// HTMX sends this header on every request; requireAntiForgery refuses requests without it.
	p.CSRFHeaderName, p.CSRFHeaderValue = csrfHeader, csrfValue
	if p.TimeZone == "Local" {
		p.TimeZone = s.now().In(s.loc).Format("MST")
	}
	if snap.Done {
		p.Generated = fin.At.In(s.loc).Format("2006-01-02 15:04 MST")
		if fin.Labs != nil {
			p.Notices = labsview.Notices(fin.Labs)
			p.Incomplete = fin.Labs.Incomplete
		}
		if fin.PatientErr != nil {
			p.Notices = append(p.Notices, labs.Notice{Level: labs.NoticeWarning,
				Text: "The patient's details could not be loaded from the EHR; the results below are for the patient the EHR opened smartlabs for."})
		} else if l.NeedPatientBanner {
			p.Banner = labsview.Banner(fin.Patient)
		}
	} else {
		p.Loading = &labs.Loading{Fetched: snap.Fetched, Total: snap.Total}
		p.BannerPending = l.NeedPatientBanner
	}

	// Flags computed from ranges by sex or age need the patient, known once
	// the fetch is done; until then only ranges for everyone are used.
	var subj labsview.Subject
	if snap.Done && fin.PatientErr == nil {
		subj = labsview.SubjectOf(fin.Patient)
	}
	results := labsview.ForSubject(snap.Results, subj)

	now := s.now()
	switch {
	case v.key != "":
		p.Mode = labs.ModeAnalyte
		p.Analyte = labsview.AnalyteOf(results, v.key, base, v.mode, v.filter)
		if p.Analyte == nil {
			if !snap.Done {
				// Its results may still be on their way.
				p.Analyte = &labs.Analyte{Key: v.key, Name: "Loading…", BackURL: labs.PageURL(base, v.mode, v.filter)}
				break
			}
			return labs.Props{}, &AppError{Status: http.StatusNotFound, Reason: "labs.no_such_test", Title: "No such test",
				Public: "This patient has no results for that test.", Err: errors.New("analyte not found")}
		}
		p.Shown = len(p.Analyte.Rows)
	case v.mode == labs.ModeList:
		rs := labsview.Apply(results, v.filter, now, true)
		p.Rows, p.List = labsview.ListPage(rs, v.filter, base, v.page)
		p.Shown = len(rs)
	case v.mode == labs.ModeFlowsheet:
		rs := labsview.Apply(results, v.filter, now, true)
		p.Flowsheet = labsview.FlowsheetOf(rs, labsview.PanelsOf(results, fin.Reports), v.filter, base, v.col)
		p.Shown = len(rs)
	default:
		rs := labsview.Apply(results, v.filter, now, false)
		p.Summary = labsview.SummaryWith(rs, labsview.PanelsOf(results, fin.Reports), v.filter, base)
		p.Shown = len(rs)
		if v.filter.Abnormal {
			p.Shown = summaryResults(p.Summary)
		}
	}
	return p, nil
}

// summaryResults counts the results behind the summary's lines.
func summaryResults(sum *labs.Summary) int {
	n := 0
	for _, a := range sum.Pinned {
		n += a.Count
	}
	for _, g := range sum.Groups {
		for _, a := range g.Lines {
			n += a.Count
		}
	}
	return n
}

// queryOf is the "?query" part of a URL, or "".
func queryOf(u string) string {
	if i := strings.IndexByte(u, '?'); i >= 0 {
		return u[i:]
	}
	return ""
}
