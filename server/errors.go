package server

import (
	"bytes"
	"errors"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"smartlabs/components/errorpage"
	"smartlabs/server/fhir"
	"smartlabs/server/session"
	"smartlabs/server/smart"
)

// AppError is an error with words a clinician can read. Only Title, Public
// and Actions are ever shown; Err is for the log.
type AppError struct {
	Status int
	// Reason is a short code saying why, logged with the error: a fixed
	// string such as "launch.unknown_iss", never request data or PHI.
	Reason  string
	Title   string
	Public  string
	Actions []errorpage.Action
	Err     error
	// HXRedirect, when set, sends HTMX requests to this same-origin path with
	// an HX-Redirect header instead of an error fragment (the launch has ended).
	HXRedirect string
	// RetryAfter, when positive, is sent as the Retry-After header in seconds.
	RetryAfter int
}

func (e *AppError) Error() string {
	if e.Err != nil {
		return e.Title + ": " + e.Err.Error()
	}
	return e.Title
}

func (e *AppError) Unwrap() error { return e.Err }

// reopenAction is the advice for every dead end inside the EHR frame.
const reopenText = "Reopen smartlabs from the patient's chart in the EHR."

// badRequest is a 400 page with its logged reason code.
func badRequest(reason, title, public string, err error) *AppError {
	return &AppError{Status: http.StatusBadRequest, Reason: reason, Title: title, Public: public, Err: err}
}

// reasonUnclassified is logged for an error that names no reason; tests
// assert that no 4xx is ever logged with it.
const reasonUnclassified = "unclassified"

// asAppError classifies any error into what the user sees.
func asAppError(err error) *AppError {
	var ae *AppError
	if errors.As(err, &ae) {
		return ae
	}
	var he *echo.HTTPError
	if errors.As(err, &he) {
		switch he.Code {
		case http.StatusNotFound:
			return &AppError{Status: he.Code, Reason: "not_found", Title: "Page not found", Public: "There is nothing at this address. " + reopenText, Err: err}
		case http.StatusMethodNotAllowed:
			return &AppError{Status: he.Code, Reason: "method_not_allowed", Title: "Not allowed", Public: "This address does not accept that kind of request.", Err: err}
		}
		if he.Code >= 400 && he.Code < 500 {
			return &AppError{Status: he.Code, Reason: "http_" + strconv.Itoa(he.Code), Title: "Request not accepted", Public: "smartlabs could not accept this request. " + reopenText, Err: err}
		}
	}
	if errors.Is(err, session.ErrStore) {
		return &AppError{Status: http.StatusServiceUnavailable, Reason: "session_store", Title: "smartlabs is briefly unavailable",
			Public: "smartlabs cannot reach its session store right now. Try again in a minute.", Err: err}
	}
	if errors.Is(err, session.ErrNoLaunch) {
		return &AppError{Status: http.StatusNotFound, Reason: "launch.not_found", Title: "This view is not open in this browser",
			Public: "This smartlabs view has ended or belongs to another browser session. " + reopenText, Err: err}
	}
	var se *smart.Error
	if errors.As(err, &se) {
		return smartAppError(se)
	}
	var fe *fhir.Error
	if errors.As(err, &fe) {
		return fhirAppError(fe)
	}
	return &AppError{Status: http.StatusInternalServerError, Reason: "internal", Title: "Something went wrong",
		Public: "smartlabs ran into a problem it did not expect. Try again; if it persists, tell support the reference below.", Err: err}
}

func smartAppError(se *smart.Error) *AppError {
	ae := &AppError{Reason: "smart." + se.Kind.String(), Public: se.Public, Err: se}
	switch se.Kind {
	case smart.KindUnreachable:
		ae.Status, ae.Title = http.StatusBadGateway, "The EHR could not be reached"
		if ae.Public == "" {
			ae.Public = "smartlabs could not reach the EHR's sign-in service. Try again in a minute; if this persists, contact your EHR support team."
		}
	case smart.KindBadServer:
		ae.Status, ae.Title = http.StatusBadGateway, "The EHR's answer could not be used"
		if ae.Public == "" {
			ae.Public = "The EHR's sign-in service answered in a way smartlabs cannot safely use. Contact your EHR support team."
		}
	case smart.KindIssuerMismatch:
		ae.Status, ae.Title = http.StatusBadRequest, "Sign-in answer from the wrong server"
		if ae.Public == "" {
			ae.Public = "The sign-in answer did not come from the EHR smartlabs was opened from, so it was refused. " + reopenText
		}
	default:
		ae.Status, ae.Title = http.StatusBadRequest, "Sign-in could not be completed"
		if ae.Public == "" {
			ae.Public = "The EHR did not accept this sign-in; it may have expired or been used already. " + reopenText
		}
	}
	return ae
}

func fhirAppError(fe *fhir.Error) *AppError {
	ae := &AppError{Status: http.StatusBadGateway, Reason: "fhir." + string(fe.Kind), Title: "The EHR's data could not be loaded", Public: fe.Public, Err: fe}
	switch fe.Kind {
	case fhir.KindUnauthorized:
		ae.Status, ae.Title = http.StatusUnauthorized, "Your session with the EHR has ended"
		ae.Public = "The EHR no longer accepts this session. " + reopenText
	case fhir.KindWrongPatient:
		ae.Title = "Results withheld for safety"
		ae.Public = "The EHR returned data that does not belong to the patient smartlabs was opened for, so nothing is shown. Contact your EHR support team."
	case fhir.KindTimeout:
		ae.Status = http.StatusGatewayTimeout
	}
	if ae.Public == "" {
		ae.Public = "The EHR did not answer as expected. Try again in a minute."
	}
	return ae
}

// handleError renders every error as a page (or an HTMX fragment) in plain
// words and logs it with the request id; it never shows err.Error() to the user.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	ae := asAppError(err)
	rid := requestID(c)
	ev := s.log.Info()
	if ae.Status >= 500 {
		ev = s.log.Error()
	}
	reason := ae.Reason
	if reason == "" {
		reason = reasonUnclassified
	}
	ev.Str("request_id", rid).Str("route", routeOf(c)).Int("status", ae.Status).Str("reason", reason).AnErr("error", ae.Err).Msg("request failed")

	props := errorpage.Props{Status: ae.Status, Title: ae.Title, Message: ae.Public, RequestID: rid, Actions: ae.Actions,
		Layout: s.layoutProps(ae.Title + " – smartlabs")}
	h := c.Response().Header()
	h.Set(echo.HeaderCacheControl, "no-store")
	h.Set("Vary", "HX-Request")
	if ae.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(ae.RetryAfter))
	}
	if ae.HXRedirect != "" && isHTMX(c) {
		// htmx follows HX-Redirect whatever the status, with a full-page GET;
		// a fragment would leave a dead view, and a 302 would be followed inside the XHR.
		h.Set("HX-Redirect", ae.HXRedirect)
		_ = c.NoContent(ae.Status)
		return
	}
	var buf bytes.Buffer
	var rerr error
	if isHTMX(c) {
		// The fragment replaces #labs, so it keeps that id for the next Retry to target.
		props.ID = "labs"
		rerr = errorpage.Fragment(props).Render(c.Request().Context(), &buf)
	} else {
		rerr = errorpage.Page(props).Render(c.Request().Context(), &buf)
	}
	if rerr != nil {
		s.log.Error().Str("request_id", rid).AnErr("error", rerr).Msg("render error page")
		_ = c.String(http.StatusInternalServerError, "Something went wrong (ref "+rid+")")
		return
	}
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(ae.Status)
		return
	}
	_ = c.HTMLBlob(ae.Status, buf.Bytes())
}

// StoreError renders the 503 page when the session store fails while scs
// loads or saves a session (scs's ErrorFunc), outside Echo's error handler.
func (s *Server) StoreError(w http.ResponseWriter, r *http.Request, err error) {
	c := s.echo.NewContext(r, w)
	s.handleError(errors.Join(session.ErrStore, err), c)
}
