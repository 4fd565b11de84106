package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"smartlabs/components/authpost"
	"smartlabs/components/errorpage"
	"smartlabs/server/session"
	"smartlabs/server/smart"
)

// maxParam bounds launch parameters; Epic's launch tokens are long but not this long.
const maxParam = 8 << 10

// cookieCheckParam marks the second request of the cookie check in /launch.
const cookieCheckParam = "cc"

// handleLaunchHead handles "HEAD /launch": launchpads probe the Launch URL
// with HEAD, which must never start a launch or consume a launch token.
func (s *Server) handleLaunchHead(c echo.Context) error {
	return c.NoContent(http.StatusOK)
}

// handleLaunch handles "GET /launch": the EHR launch (iss and launch) and the
// standalone launch (iss only).
func (s *Server) handleLaunch(c echo.Context) error {
	r := c.Request()
	q := r.URL.Query()
	if len(q["iss"]) > 1 || len(q["launch"]) > 1 {
		return badRequest("launch.duplicate_param", "This launch link is malformed", "The link names the EHR or the launch more than once. "+reopenText, nil)
	}
	issParam, launchToken := q.Get("iss"), q.Get("launch")
	if issParam == "" {
		return badRequest("launch.no_iss", "This link does not say which EHR opened smartlabs",
			"smartlabs must be opened from an EHR, which adds its address to the link. "+reopenText, nil)
	}
	if len(issParam) > maxParam || len(launchToken) > maxParam {
		return badRequest("launch.too_long", "This launch link is too long", "The launch link is longer than any EHR sends. "+reopenText, nil)
	}
	// The iss is checked against the config before anything else happens, so
	// an unknown server never receives a request from us.
	iss := s.cfg.Lookup(issParam)
	if iss == nil {
		return badRequest("launch.unknown_iss", "smartlabs is not set up for this EHR",
			"The EHR that opened smartlabs is not one this installation is configured to work with. Ask your EHR support team to check the smartlabs registration.", nil)
	}
	ctx := r.Context()

	// Check the browser keeps our cookie before spending the single-use launch
	// token: inside an EHR frame a browser may block it, and then no sign-in can complete.
	if !session.HasCookie(r) {
		if q.Get(cookieCheckParam) == "" {
			s.sessions.EnsureBrowserID(ctx)
			q.Set(cookieCheckParam, "1")
			return c.Redirect(http.StatusSeeOther, "/launch?"+q.Encode())
		}
		q.Del(cookieCheckParam)
		return &AppError{
			Status: http.StatusBadRequest,
			Reason: "launch.cookie_blocked",
			Title:  "Your browser blocked smartlabs' cookie",
			Public: "Inside the EHR window this browser does not keep the cookie smartlabs needs to sign you in safely. Open smartlabs in its own window instead.",
			Actions: []errorpage.Action{{
				Label: "Open smartlabs in a new window", Href: "/launch?" + q.Encode(), NewWindow: true,
			}},
		}
	}
	browser := s.sessions.EnsureBrowserID(ctx)

	d, err := s.smart.Discover(ctx, *iss)
	if err != nil {
		return err
	}
	// The launch value is an opaque handle to the EHR's context, not ours to
	// police: whether it may be used again is the authorization server's call
	// (Epic's are single use; test launchers reuse one per setting), and its
	// refusal comes back to /callback as an error answer.
	ar, err := smart.NewAuthRequest(d, *iss, s.cfg.RedirectURIFor(iss), launchToken)
	if err != nil {
		return err
	}
	p := &session.Pending{
		LaunchID:     session.RandomID(),
		Browser:      browser,
		ISS:          iss.ISS,
		EHRLaunch:    launchToken != "",
		CodeVerifier: ar.CodeVerifier,
		Nonce:        ar.Nonce,
		Created:      s.now(),
	}
	if err := s.claimPendingSlot(ctx, browser, ar.State); err != nil {
		return err
	}
	if err := s.sessions.SavePending(ctx, ar.State, p); err != nil {
		return err
	}
	if ar.Method == http.MethodPost {
		return render(c, http.StatusOK, authpost.Page(s.layoutProps("Signing in"), authpost.Props{Action: ar.URL, Fields: formFields(ar.Form)}))
	}
	return c.Redirect(http.StatusFound, ar.URL)
}

func formFields(v url.Values) []authpost.Field {
	out := make([]authpost.Field, 0, len(v))
	for k, vs := range v {
		for _, x := range vs {
			out = append(out, authpost.Field{Name: k, Value: x})
		}
	}
	return out
}

// handleCallback handles "GET /callback": the OAuth redirect_uri.
func (s *Server) handleCallback(c echo.Context) error {
	r := c.Request()
	q := r.URL.Query()
	ctx := r.Context()
	state := q.Get("state")
	if state == "" || len(state) > 512 || len(q["state"]) > 1 {
		return badRequest("callback.no_state", "This sign-in answer is incomplete",
			"The answer from the EHR's sign-in service is missing its check value. "+reopenText, nil)
	}
	// The pending request is consumed before anything else, so a state works exactly once.
	p, ok, err := s.sessions.TakePending(ctx, state)
	if err != nil {
		return err
	}
	if ok {
		s.releasePendingSlot(ctx, state)
	}
	if !ok {
		return badRequest("callback.unknown_state", "This sign-in has expired or was already used",
			"smartlabs did not start this sign-in, it took longer than 10 minutes, or the page was reloaded. "+reopenText, nil)
	}
	// From here on, error pages show inside this issuer's EHR frame.
	s.setRequestIssuer(c, p.ISS)
	// The state must come back to the browser that started the launch (login CSRF defence).
	if !session.ConstantTimeEqual(s.sessions.BrowserID(ctx), p.Browser) {
		if !session.HasCookie(r) {
			return &AppError{
				Status: http.StatusBadRequest,
				Reason: "callback.cookie_missing",
				Title:  "Your browser did not return smartlabs' cookie",
				Public: "The sign-in finished, but this browser did not send back the cookie that ties it to you, so smartlabs cannot continue safely. Open smartlabs in its own window and try again.",
				Actions: []errorpage.Action{{
					Label: "Open smartlabs in a new window", Href: "/launch?iss=" + url.QueryEscape(p.ISS), NewWindow: true,
				}},
			}
		}
		return badRequest("callback.other_browser", "This sign-in belongs to another browser session",
			"The sign-in answer does not match this browser's session, so it was refused. "+reopenText, nil)
	}
	iss := s.cfg.Lookup(p.ISS)
	if iss == nil {
		return badRequest("callback.unknown_iss", "smartlabs is not set up for this EHR", "This EHR is no longer configured. "+reopenText, nil)
	}
	if err := checkCallbackPath(c, iss); err != nil {
		return err
	}
	if e := q.Get("error"); e != "" {
		return authorizationError(e)
	}
	code := q.Get("code")
	if code == "" || len(code) > maxParam {
		return badRequest("callback.no_code", "This sign-in answer is incomplete", "The EHR's sign-in answer carries no authorization code. "+reopenText, nil)
	}
	d, err := s.smart.Discover(ctx, *iss)
	if err != nil {
		return err
	}
	// Mix-up defence (RFC 9207): the answer must come from the server we sent the user to.
	if err := smart.CheckResponseIssuer(d, q.Get("iss")); err != nil {
		return err
	}
	tok, err := s.smart.Exchange(ctx, d, *iss, s.keys[iss.ISS], s.cfg.RedirectURIFor(iss), code, p.CodeVerifier, p.Nonce)
	if err != nil {
		return err
	}
	if tok.Patient == "" {
		return &AppError{Status: http.StatusBadGateway, Reason: "callback.no_patient", Title: "No patient was selected",
			Public: "The EHR did not say which patient smartlabs was opened for, so nothing can be shown. " + reopenText,
			Err:    errors.New("token response without patient")}
	}
	if err := s.sessions.Login(ctx); err != nil {
		return err
	}
	l := &session.Launch{
		ID: p.LaunchID, Browser: p.Browser, ISS: iss.ISS, EHRLaunch: p.EHRLaunch,
		AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken, IDToken: tok.IDToken,
		Scope: tok.Scope, Expiry: tok.Expiry, Patient: tok.Patient, Encounter: tok.Encounter,
		NeedPatientBanner: tok.NeedPatientBanner, SmartStyleURL: tok.SmartStyleURL,
		FHIRContext: tok.FHIRContext, FHIRUser: tok.FHIRUser, Created: s.now(),
	}
	if err := s.sessions.SaveLaunch(ctx, l); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, labsPath(l.ID))
}

// authorizationError explains an error answer from the authorization server.
// Its error_description is not shown: it is free text from another system.
func authorizationError(code string) *AppError {
	switch code {
	case "access_denied":
		return &AppError{Status: http.StatusForbidden, Reason: "callback.access_denied", Title: "Access was not granted",
			Public: "The EHR did not give smartlabs access to this patient's results. If that is unexpected, " + lowerFirst(reopenText)}
	case "invalid_scope", "unauthorized_client":
		return &AppError{Status: http.StatusForbidden, Reason: "callback." + code, Title: "smartlabs is not allowed to do this",
			Public: "The EHR refused the access smartlabs asked for (" + code + "). Ask your EHR support team to check the smartlabs registration."}
	}
	safe := "other"
	if len(code) <= 40 && isToken(code) {
		safe = code
	}
	return badRequest("callback.error."+safe, "The EHR refused the sign-in", "The EHR's sign-in service answered with an error ("+safe+"). "+reopenText, nil)
}

func isToken(s string) bool {
	for _, r := range s {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

func lowerFirst(s string) string {
	if s == "" {
		return s
	}
	return string(s[0]|0x20) + s[1:]
}

func labsPath(id string) string { return "/l/" + id }

// maxPendingPerBrowser bounds the sign-ins one browser may have in progress
// at once, so abandoned launches cannot pile up records in the store.
const maxPendingPerBrowser = 20

// claimPendingSlot takes one of the browser's pending-sign-in slots for state.
// The slots are KV keys that expire with the pending record, so an abandoned
// launch frees its slot after session.PendingTTL and a completed one at its callback.
func (s *Server) claimPendingSlot(ctx context.Context, browser, state string) error {
	kv := s.sessions.KV()
	// Keys carry hashes, never the browser id or the state themselves.
	b := sha256.Sum256([]byte(browser))
	for i := range maxPendingPerBrowser {
		slot := "pendslot:" + hex.EncodeToString(b[:16]) + ":" + strconv.Itoa(i)
		ok, err := kv.SetNX(ctx, slot, []byte{1}, session.PendingTTL)
		if err != nil {
			return err
		}
		if ok {
			return kv.Set(ctx, pendingSlotKey(state), []byte(slot), session.PendingTTL)
		}
	}
	return &AppError{Status: http.StatusTooManyRequests, Reason: "launch.too_many_pending", Title: "Too many sign-ins in progress",
		Public:     "This browser has started smartlabs many times without finishing signing in. Close the other smartlabs windows, or wait ten minutes, then reopen smartlabs from the patient's chart.",
		RetryAfter: int(session.PendingTTL / time.Second),
		Err:        errors.New("pending sign-in slots exhausted")}
}

// releasePendingSlot frees the slot of a sign-in whose callback arrived.
// A failure only delays the slot's expiry, so it is not an error for the user.
func (s *Server) releasePendingSlot(ctx context.Context, state string) {
	kv := s.sessions.KV()
	slot, ok, err := kv.Take(ctx, pendingSlotKey(state))
	if err == nil && ok {
		_ = kv.Delete(ctx, string(slot))
	}
}

func pendingSlotKey(state string) string {
	sum := sha256.Sum256([]byte(state))
	return "pendslotof:" + hex.EncodeToString(sum[:])
}
