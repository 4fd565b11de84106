package ehrsim

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// inFlight counts the requests with an access token being served, in all
// and per token, so the simulator can slow down under load, throttle an app
// that sends too many at once, and tell tests how many were in flight.
type inFlight struct {
	all     int
	byToken map[string]int
}

// bearerToken is the request's access token as sent, or "".
func bearerToken(r *http.Request) string {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(tok)
}

// arrive counts r in flight and returns the counts with it included.
func (s *Sim) arrive(r *http.Request) (all, token int) {
	tok := bearerToken(r)
	if tok == "" {
		return 0, 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.flight.all++
	s.flight.byToken[tok]++
	return s.flight.all, s.flight.byToken[tok]
}

// leave counts r out again.
func (s *Sim) leave(r *http.Request) {
	tok := bearerToken(r)
	if tok == "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.flight.all--
	if s.flight.byToken[tok]--; s.flight.byToken[tok] <= 0 {
		delete(s.flight.byToken, tok)
	}
}

// throttled answers 429 with Retry-After, and returns true, when the
// request's token had more requests in flight at its arrival than the
// MaxInFlightPerToken switch allows. It answers at once: a throttled request
// costs the EHR little.
func (s *Sim) throttled(w http.ResponseWriter) bool {
	sw := s.Switches()
	rec, ok := w.(*recorder)
	if sw.MaxInFlightPerToken <= 0 || !ok || rec.tokenInFlight <= sw.MaxInFlightPerToken {
		return false
	}
	w.Header().Set("Retry-After", strconv.Itoa(int(sw.RetryAfter.Seconds())))
	writeOutcome(w, http.StatusTooManyRequests, "error", "throttled", "", "Too many concurrent requests.")
	return true
}

// searchQuery is what the request log keeps of a FHIR search's query: its
// parameters but the patient, so tests can tell the searches apart.
func searchQuery(r *http.Request) string {
	if !strings.HasSuffix(r.URL.Path, "/Observation") {
		return ""
	}
	q := r.URL.Query()
	q.Del("patient")
	return q.Encode()
}

// resultsLatency sleeps LatencyPerResult for each of n results.
func (s *Sim) resultsLatency(r *http.Request, n int) {
	sleep(r.Context(), s.Switches().LatencyPerResult*time.Duration(n))
}
