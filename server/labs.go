package server

import (
	"context"
	"errors"
	"net/http"
	"regexp"

	"github.com/labstack/echo/v4"

	"smartlabs/components/labs"
	"smartlabs/components/layout"
	"smartlabs/server/fhir"
	"smartlabs/server/labsview"
	"smartlabs/server/session"
)

var launchIDRe = regexp.MustCompile(`^[A-Za-z0-9_-]{22}$`)

// loadLaunch returns the launch named in the path if it belongs to this browser and is still live.
func (s *Server) loadLaunch(c echo.Context) (*session.Launch, error) {
	id := c.Param("launch")
	if !launchIDRe.MatchString(id) {
		return nil, session.ErrNoLaunch
	}
	l, err := s.sessions.LoadLaunch(c.Request().Context(), id)
	if err != nil {
		return nil, err
	}
	if !l.Expiry.IsZero() && !s.now().Before(l.Expiry) {
		return nil, &AppError{Status: http.StatusUnauthorized, Title: "Your smartlabs session has ended",
			Public: "The access the EHR gave smartlabs has expired. " + reopenText, Err: errors.New("access token expired")}
	}
	return l, nil
}

// handleLabsPage handles "GET /l/:launch": the full labs page of one launch.
func (s *Server) handleLabsPage(c echo.Context) error {
	return s.serveLabs(c)
}

// handleLabsFragment handles "GET /l/:launch/labs": the labs list as an HTMX
// fragment (Refresh and Retry), or the full page for a plain request.
func (s *Server) handleLabsFragment(c echo.Context) error {
	return s.serveLabs(c)
}

func (s *Server) serveLabs(c echo.Context) error {
	c.Response().Header().Set("Vary", "HX-Request")
	l, err := s.loadLaunch(c)
	if err != nil {
		return err
	}
	props, err := s.labsProps(c, l)
	if err != nil {
		return err
	}
	if isHTMX(c) {
		return render(c, http.StatusOK, labs.Fragment(props))
	}
	return render(c, http.StatusOK, layout.Page(s.layoutProps("Lab results"), labs.View(props)))
}

// labsProps fetches the patient and the labs concurrently and builds the view
// model. Every view of patient data is written to the audit log, whatever its outcome.
func (s *Server) labsProps(c echo.Context, l *session.Launch) (labs.Props, error) {
	ctx, cancel := context.WithTimeout(c.Request().Context(), s.cfg.FHIR.ViewTimeout)
	defer cancel()
	issuer := s.cfg.Lookup(l.ISS)
	if issuer == nil {
		return labs.Props{}, session.ErrNoLaunch
	}
	data := s.fetchLaunchData(ctx, l, nil)
	patient, perr, res := data.Patient, data.PatientErr, data.Labs

	ev := AuditEvent{Who: l.FHIRUser, Patient: l.Patient, Issuer: issuer.ISS, What: "labs.view",
		RequestID: requestID(c), When: s.now()}
	var fe *fhir.Error
	// Data for another patient is never shown, not even in part.
	if errors.As(perr, &fe) && fe.Kind == fhir.KindWrongPatient || errors.As(res.Err, &fe) && fe.Kind == fhir.KindWrongPatient {
		ev.Outcome = "wrong-patient"
		s.audit.Record(ev)
		if fe == nil {
			fe = &fhir.Error{Kind: fhir.KindWrongPatient}
		}
		return labs.Props{}, fe
	}
	// Nothing at all and an authorization failure: the session is over, not the list incomplete.
	if len(res.Observations) == 0 && errors.As(res.Err, &fe) && fe.Kind == fhir.KindUnauthorized {
		ev.Outcome = "denied"
		s.audit.Record(ev)
		return labs.Props{}, fe
	}

	props := labs.Props{
		LaunchID:   l.ID,
		Rows:       labsview.Rows(res.Observations, s.loc),
		Notices:    labsview.Notices(res),
		Incomplete: res.Incomplete,
		RefreshURL: labsPath(l.ID) + "/labs",
		Generated:  s.now().In(s.loc).Format("2006-01-02 15:04 MST"),
	}
	props.Total = len(props.Rows)
	if perr != nil {
		props.Notices = append(props.Notices, labs.Notice{Level: labs.NoticeWarning,
			Text: "The patient's details could not be loaded from the EHR; the results below are for the patient the EHR opened smartlabs for."})
	} else if l.NeedPatientBanner {
		props.Banner = labsview.Banner(patient)
	}
	ev.Outcome, ev.Results = "complete", props.Total
	if res.Incomplete {
		ev.Outcome = "incomplete"
	}
	s.audit.Record(ev)
	return props, nil
}
