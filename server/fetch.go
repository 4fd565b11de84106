package server

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"smartlabs/server/config"
	"smartlabs/server/fhir"
	"smartlabs/server/panics"
	"smartlabs/server/session"
	"smartlabs/server/smart"
)

// launchData is what one fetch of a launch's FHIR data brought back.
type launchData struct {
	Patient    *fhir.Patient
	PatientErr error
	Labs       *fhir.LabsResult
	// Reports is the DiagnosticReport search, nil when the grant lacks its scope.
	Reports *fhir.ReportsResult
}

const (
	// refreshSkew refreshes an access token this long before it expires, so a
	// request never starts with a token that dies on the way.
	refreshSkew = 60 * time.Second
	// refreshLockTTL bounds how long one request may hold a launch's refresh
	// lock; it outlives refreshTimeout so the lock never expires mid-refresh.
	refreshLockTTL = 15 * time.Second
	// refreshTimeout bounds the discovery and token requests of one refresh.
	refreshTimeout = 10 * time.Second
	// refreshPoll is how often a request waiting for another's refresh re-reads the record.
	refreshPoll = 50 * time.Millisecond
)

// fetchLaunchData reads the launch's Patient and searches its labs
// concurrently. onPage, when set, is called as each search page arrives.
//
// It keeps the launch's access token alive: a token that expires within
// refreshSkew is refreshed first, and when the EHR answers 401 the token is
// refreshed and the whole fetch retried once. An error means nothing was
// fetched: the launch has ended (an *AppError with HXRedirect set) or its
// record could not be read or written.
func (s *Server) fetchLaunchData(ctx context.Context, l *session.Launch, onPage func(fhir.Progress)) (launchData, error) {
	issuer := s.cfg.Lookup(l.ISS)
	if issuer == nil {
		return launchData{}, issuerGone(l.ID)
	}
	l, err := s.freshLaunch(ctx, l)
	if err != nil {
		return launchData{}, err
	}
	d := s.fetchOnce(ctx, issuer, l, onPage)
	if !unauthorized(d) || ctx.Err() != nil {
		return d, nil
	}
	// The EHR no longer accepts the token (revoked, or its clock runs ahead of
	// ours): refresh once and retry once, never more, so a broken EHR cannot loop us.
	l, err = s.refreshLaunch(ctx, l, l.AccessToken)
	if err != nil {
		return launchData{}, err
	}
	return s.fetchOnce(ctx, issuer, l, onPage), nil
}

// fetchOnce is one concurrent read of the Patient, search of the labs and,
// when granted, of the lab reports at issuer, l's configured issuer, with l's token.
func (s *Server) fetchOnce(ctx context.Context, issuer *config.Issuer, l *session.Launch, onPage func(fhir.Progress)) launchData {
	fc := &fhir.Client{
		HTTP: s.http, BaseURL: strings.TrimSuffix(issuer.ISS, "/"), Token: l.AccessToken,
		ClientID: issuer.ClientID, PageSize: s.cfg.FHIR.PageSize, RequestTimeout: s.cfg.FHIR.RequestTimeout,
		OnPage:       onPage,
		MaxParallel:  orDefault(issuer.MaxParallel, config.DefaultMaxParallel),
		Gate:         s.gates[config.NormalizeISS(issuer.ISS)],
		Capabilities: s.fhirCaps,
		Now:          s.now,
	}
	var (
		wg                        sync.WaitGroup
		d                         launchData
		panicked, reportsPanicked error
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer panics.Recover(&panicked)
		d.Patient, d.PatientErr = fc.Patient(ctx, l.Patient)
	}()
	// The lab reports only name the panels: they are searched beside the
	// results when the EHR granted them, and the view works without them.
	if smart.Grants(l.Scope, "DiagnosticReport") {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer panics.Recover(&reportsPanicked)
			d.Reports = fc.Reports(ctx, l.Patient)
		}()
	}
	d.Labs = fc.Labs(ctx, l.Patient)
	s.metrics.Results(issuer.Name, len(d.Labs.Observations))
	if d.Labs.FellBack {
		s.log.Warn().Str("issuer", issuer.Name).Str("param", d.Labs.SlicedBy).
			Msg("the EHR lists a search parameter but ignores it: the results were fetched again page after page")
	}
	wg.Wait()
	if panicked == nil {
		panicked = reportsPanicked
	}
	if panicked != nil {
		// The Patient read's panic goes on here, where the fetch's own
		// recovery (labscache) ends the fetch with it, stack and all.
		panic(panicked)
	}
	return d
}

// orDefault is n, or def when n is 0 (a config built in code, without defaults).
func orDefault(n, def int) int {
	if n == 0 {
		return def
	}
	return n
}

// unauthorized reports whether the EHR refused the access token on either request.
func unauthorized(d launchData) bool {
	var fe *fhir.Error
	if errors.As(d.PatientErr, &fe) && fe.Kind == fhir.KindUnauthorized {
		return true
	}
	return d.Labs != nil && errors.As(d.Labs.Err, &fe) && fe.Kind == fhir.KindUnauthorized
}

// freshLaunch returns l, or l with a refreshed access token when its token
// expires within refreshSkew.
func (s *Server) freshLaunch(ctx context.Context, l *session.Launch) (*session.Launch, error) {
	if l.AccessToken == "" {
		return nil, sessionEnded(l.ID, errors.New("launch already ended"))
	}
	now := s.now()
	if l.Expiry.IsZero() || now.Add(refreshSkew).Before(l.Expiry) {
		return l, nil
	}
	expired := !now.Before(l.Expiry)
	if l.RefreshToken == "" {
		if expired {
			return nil, s.endLaunch(ctx, l, errors.New("access token expired and no refresh token"))
		}
		// Without a refresh token the last minute of the token is still worth using.
		return l, nil
	}
	nl, err := s.refreshLaunch(ctx, l, l.AccessToken)
	var ae *AppError
	if err != nil && !expired && !(errors.As(err, &ae) && ae.HXRedirect != "") {
		// A refresh ahead of time that failed for a passing reason (EHR briefly
		// down) is no reason to refuse a token that still works.
		s.log.Warn().AnErr("error", err).Msg("early token refresh failed; using the current token")
		return l, nil
	}
	return nl, err
}

// refreshLaunch replaces the launch's access token, stale, with a new one.
//
// Exactly one request per launch refreshes, across replicas too: the lock
// lives in the shared session KV. Waiters re-read the record until its token
// changes and use the new one; the lock holder re-reads the record after
// taking the lock, in case another request refreshed while it waited.
func (s *Server) refreshLaunch(ctx context.Context, l *session.Launch, stale string) (*session.Launch, error) {
	kv := s.sessions.KV()
	lockKey := "lock:refresh:" + l.ID
	deadline := time.Now().Add(refreshLockTTL + refreshTimeout)
	for {
		got, err := kv.SetNX(ctx, lockKey, []byte(session.RandomID()), refreshLockTTL)
		if err != nil {
			return nil, err
		}
		if got {
			// The lock is released even when the request is cancelled, so others need not wait out its TTL.
			defer func() { _ = kv.Delete(context.WithoutCancel(ctx), lockKey) }()
			return s.refreshLocked(ctx, l.ID, stale)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(refreshPoll):
		}
		cur, err := s.sessions.LoadLaunch(ctx, l.ID)
		if err != nil {
			return nil, err
		}
		if cur.AccessToken != stale {
			if cur.AccessToken == "" {
				return nil, sessionEnded(l.ID, errors.New("launch ended by a concurrent refresh"))
			}
			return cur, nil
		}
		if time.Now().After(deadline) {
			return nil, &AppError{Status: http.StatusServiceUnavailable, Reason: "refresh.lock_timeout", Title: "smartlabs is briefly unavailable",
				Public: "smartlabs could not renew its access to the EHR in time. Try again in a minute.",
				Err:    errors.New("timed out waiting for the refresh lock")}
		}
	}
}

// refreshLocked refreshes launch id's token; the caller holds the launch's refresh lock.
func (s *Server) refreshLocked(ctx context.Context, id, stale string) (*session.Launch, error) {
	cur, err := s.sessions.LoadLaunch(ctx, id)
	if err != nil {
		return nil, err
	}
	if cur.AccessToken != stale {
		if cur.AccessToken == "" {
			return nil, sessionEnded(id, errors.New("launch ended by a concurrent refresh"))
		}
		return cur, nil
	}
	if cur.RefreshToken == "" {
		return nil, s.endLaunch(ctx, cur, errors.New("no refresh token"))
	}
	iss := s.cfg.Lookup(cur.ISS)
	if iss == nil {
		return nil, issuerGone(id)
	}
	// The refresh and the write-back run to the end even if the browser goes
	// away: the server may rotate the refresh token, and a rotated token we
	// never saved would end the launch.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), refreshTimeout)
	defer cancel()
	d, err := s.smart.Discover(rctx, *iss)
	if err != nil {
		return nil, err
	}
	tok, err := s.smart.Refresh(rctx, d, *iss, s.keys[iss.ISS], cur.RefreshToken)
	if smart.IsGrantEnded(err) {
		return nil, s.endLaunch(rctx, cur, err)
	}
	if err != nil {
		return nil, err
	}
	// A refreshed grant for another patient would show the wrong chart's results.
	if tok.Patient != "" && tok.Patient != cur.Patient {
		return nil, &fhir.Error{Kind: fhir.KindWrongPatient, Err: errors.New("refresh response names another patient")}
	}
	cur.AccessToken, cur.Expiry = tok.AccessToken, tok.Expiry
	if tok.RefreshToken != "" {
		cur.RefreshToken = tok.RefreshToken
	}
	if tok.Scope != "" {
		cur.Scope = tok.Scope
	}
	if err := s.sessions.SaveLaunch(rctx, cur); err != nil {
		return nil, err
	}
	s.log.Info().Str("issuer", iss.Name).Bool("rotated", tok.RefreshToken != "").Msg("access token refreshed")
	return cur, nil
}

// endLaunch wipes the launch's tokens, so later requests (the HX-Redirect's
// full page among them) show the ended page at once without asking the EHR
// again, and returns that page's error.
func (s *Server) endLaunch(ctx context.Context, l *session.Launch, cause error) error {
	ended := *l
	ended.AccessToken, ended.RefreshToken, ended.IDToken = "", "", ""
	if err := s.sessions.SaveLaunch(ctx, &ended); err != nil && !errors.Is(err, session.ErrNoLaunch) {
		return err
	}
	return sessionEnded(l.ID, cause)
}

// sessionEnded is the page shown when a launch's grant is over. HTMX requests
// get an HX-Redirect to the launch's full page instead of a fragment, which
// then shows this page itself: never a redirect to the authorization server
// inside a fragment, and no loop, because the full page ends here too.
func sessionEnded(launchID string, cause error) *AppError {
	return &AppError{Status: http.StatusUnauthorized, Reason: "launch.ended", Title: "Your smartlabs session has ended",
		Public: "Reopen smartlabs from the patient's chart.", HXRedirect: labsPath(launchID), Err: cause}
}

// issuerGone is the page of a launch whose issuer is no longer in the config:
// a replica was rolled out without it while the launch lives on in the
// shared session store. The launch is over here, and nothing is asked of an
// EHR the config no longer names. HTMX requests are sent to the full page,
// which shows this page itself.
func issuerGone(launchID string) *AppError {
	return &AppError{Status: http.StatusGone, Reason: "launch.issuer_removed", Title: "This EHR is no longer set up",
		Public:     "smartlabs is no longer set up for this EHR; reopen it from the patient's chart.",
		HXRedirect: labsPath(launchID), Err: errors.New("the launch's issuer is not in the config")}
}
