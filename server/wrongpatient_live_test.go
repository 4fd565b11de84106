package server_test

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"smartlabs/server"
	"smartlabs/server/ehrsim"
)

// foreignPages passes the first Observation search request as it is; every
// later one waits until open is closed, and its answer names another
// patient in place of patient: the EHR mixing records mid-list.
type foreignPages struct {
	patient string
	open    chan struct{}
	seen    atomic.Int32
}

func (fp *foreignPages) RoundTrip(r *http.Request) (*http.Response, error) {
	if !strings.HasSuffix(r.URL.Path, "/Observation") || fp.seen.Add(1) == 1 {
		return http.DefaultTransport.RoundTrip(r)
	}
	select {
	case <-fp.open:
	case <-r.Context().Done():
		return nil, r.Context().Err()
	}
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	body = bytes.ReplaceAll(body, []byte("Patient/"+fp.patient), []byte("Patient/someone-else"))
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	resp.Header.Del("Content-Length")
	return resp, nil
}

// TestWrongPatientMidListRemovesEveryRow: the first page of results is on
// screen and the view follows its updates; then the EHR's later pages name
// another patient. The update that follows replaces the whole view with
// the safety notice: no row of the list, the first page's included, stays.
func TestWrongPatientMidListRemovesEveryRow(t *testing.T) {
	fp := &foreignPages{open: make(chan struct{})}
	h := newHarness(t, harnessOptions{
		Switches: ehrsim.Switches{},
		Deps:     func(d *server.Deps) { d.HTTPClient.Transport = fp },
	})
	p := h.Patient("Large")
	fp.patient = p.ID // before the launch: no request has been sent yet
	t.Cleanup(func() {
		select {
		case <-fp.open:
		default:
			close(fp.open)
		}
	})
	b := newBrowser(t)
	resp, doc, _ := b.get(h.LaunchURL(p.ID))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("launch: %d", resp.StatusCode)
	}
	shown := doc.Find(`[data-testid="summary-line"]`).Length()
	if shown == 0 || doc.Find("#labs-live").Length() == 0 {
		t.Fatalf("before the foreign pages: %d lines shown, live element %d", shown, doc.Find("#labs-live").Length())
	}
	close(fp.open)
	last := mustFollowPolls(t, b, h.AppURL, doc)
	if n := last.Find(`[data-testid="summary-line"], [data-testid="result-row"]`).Length(); n != 0 {
		t.Errorf("%d result rows still shown after the EHR sent another patient's data (%d before)", n, shown)
	}
	if got := last.Find("#labs").Text(); !strings.Contains(got, "Results withheld for safety") {
		t.Errorf("the view does not say the results were withheld: %.300q", got)
	}
	if strings.Contains(last.Text(), "someone-else") {
		t.Error("the other patient's reference reaches the page")
	}
}
