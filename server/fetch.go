package server

import (
	"context"
	"strings"
	"sync"

	"smartlabs/server/fhir"
	"smartlabs/server/session"
)

// launchData is what one fetch of a launch's FHIR data brought back.
type launchData struct {
	Patient    *fhir.Patient
	PatientErr error
	Labs       *fhir.LabsResult
}

// fetchLaunchData reads the launch's Patient and searches its labs
// concurrently. onPage, when set, is called as each search page arrives.
func (s *Server) fetchLaunchData(ctx context.Context, l *session.Launch, onPage func(fhir.Progress)) launchData {
	issuer := s.cfg.Lookup(l.ISS)
	fc := &fhir.Client{
		HTTP: s.http, BaseURL: strings.TrimSuffix(issuer.ISS, "/"), Token: l.AccessToken,
		ClientID: issuer.ClientID, PageSize: s.cfg.FHIR.PageSize, RequestTimeout: s.cfg.FHIR.RequestTimeout,
		OnPage: onPage,
	}
	var (
		wg sync.WaitGroup
		d  launchData
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		d.Patient, d.PatientErr = fc.Patient(ctx, l.Patient)
	}()
	d.Labs = fc.Labs(ctx, l.Patient)
	wg.Wait()
	return d
}
