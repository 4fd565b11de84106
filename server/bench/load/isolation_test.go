package load_test

import (
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"smartlabs/server/config"
	"smartlabs/server/ehrsim"
	"smartlabs/server/servertest"
)

// isolationLaunches is how many launches run at once in the isolation phase.
const isolationLaunches = 500

var afterRe = regexp.MustCompile(`[?&;]after=(\d+)`)

var bannerNameRe = regexp.MustCompile(`data-testid="banner-name"[^>]*>([^<]*)<`)

// isolationCheck is one browser's launch and its verdict.
type isolationCheck struct {
	err     error
	leak    bool
	latency time.Duration
}

// isolationTable starts isolationLaunches launches at once, each from its own
// browser for one of the patients in turn, and checks that every browser's
// view names its own patient and no other: zero errors, zero cross-patient leaks.
func isolationTable(t *testing.T) string {
	var out strings.Builder
	fmt.Fprintf(&out, "\n### Isolation: %d concurrent launches, each checking it sees only its own patient\n\n", isolationLaunches)
	out.WriteString("| store | launches | errors | cross-patient leaks | wall time | p50 | p99 |\n|---|---:|---:|---:|---:|---:|---:|\n")
	for _, store := range []string{"memory", "redis"} {
		t.Run("isolation-"+store, func(t *testing.T) {
			// 500 launches at once queue at the simulator on 2 cores: give each
			// FHIR request time enough, since this phase measures isolation.
			env, _ := launchEnv(t, store, func(c *config.Config) {
				c.FHIR.RequestTimeout = 45 * time.Second
				c.FHIR.ViewTimeout = 60 * time.Second
			})
			var patients []ehrsim.PatientInfo
			for _, p := range env.Sim.Patients() {
				// The 5,000-result patient is left out: this phase is about isolation, not volume.
				if p.ResultCount > 0 && p.ResultCount < 1000 {
					patients = append(patients, p)
				}
			}
			if len(patients) < 2 {
				t.Fatal("need at least two patients with results")
			}
			// No per-host connection limit: every launch is really in flight at once.
			hc := &http.Client{
				Transport:     &http.Transport{MaxIdleConnsPerHost: isolationLaunches},
				CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
				Timeout:       60 * time.Second,
			}
			checks := make([]isolationCheck, isolationLaunches)
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i := range checks {
				p := patients[i%len(patients)]
				wg.Go(func() {
					<-start
					t0 := time.Now()
					checks[i] = ownPatientOnly(env, hc, p, patients)
					checks[i].latency = time.Since(t0)
				})
			}
			t0 := time.Now()
			close(start)
			wg.Wait()
			wall := time.Since(t0)
			var errs, leaks int
			var lat []time.Duration
			for _, c := range checks {
				lat = append(lat, c.latency)
				if c.err != nil {
					errs++
					if errs <= 3 {
						t.Errorf("%s: %v", store, c.err)
					}
				}
				if c.leak {
					leaks++
				}
			}
			slices.Sort(lat)
			fmt.Fprintf(&out, "| %s | %d | %d | %d | %.1f s | %.0f ms | %.0f ms |\n", store, len(checks), errs, leaks,
				wall.Seconds(), ms(lat[len(lat)/2]), ms(lat[len(lat)*99/100]))
			if leaks > 0 {
				t.Errorf("%s: %d views showed another patient", store, leaks)
			}
		})
	}
	out.WriteString("\nEach launch: a chart launch token from the simulator, /launch, authorize, /callback, then its labs page until every page has arrived; it must name its own patient in the banner and no other patient's name anywhere.\n")
	return out.String()
}

// ownPatientOnly launches p from a new browser and reads its labs page until
// the list is complete, then checks whose data it shows.
func ownPatientOnly(env *servertest.Env, hc *http.Client, p ehrsim.PatientInfo, all []ehrsim.PatientInfo) isolationCheck {
	ip := nextClientIP()
	b, err := launchFrom(env, hc, p.ID, ip)
	if err != nil {
		return isolationCheck{err: err}
	}
	// Wait for the list as the page does: a long poll that the server holds
	// until more results arrive.
	deadline := time.Now().Add(120 * time.Second)
	after := "0"
	var page string
	for {
		req, _ := http.NewRequest(http.MethodGet, env.AppURL+b.path+"?after="+after, nil)
		req.Header.Set("X-Forwarded-For", ip)
		for k, v := range htmx("") {
			req.Header[k] = v
		}
		req.Header.Set("HX-Trigger", "labs-poller")
		req.Header.Set("HX-Target", "labs-results")
		b.addCookies(req)
		resp, err := hc.Do(req)
		if err != nil {
			return isolationCheck{err: err}
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return isolationCheck{err: fmt.Errorf("labs view: HTTP %d", resp.StatusCode)}
		}
		page = string(body)
		// The answer that completes the list carries the banner too: the view
		// is checked as the page shows it, with no further request.
		if afterRe.FindStringSubmatch(page) == nil {
			break
		}
		if time.Now().After(deadline) {
			return isolationCheck{err: fmt.Errorf("labs view never completed")}
		}
		after = afterRe.FindStringSubmatch(page)[1]
	}
	var c isolationCheck
	m := bannerNameRe.FindStringSubmatch(page)
	if m == nil {
		notice := regexp.MustCompile(`data-testid="notice"[^>]*>([^<]*)<`).FindStringSubmatch(page)
		return isolationCheck{err: fmt.Errorf("labs view of %s has no patient banner (notice %q): %.400s", p.Name, notice, page[min(len(page), strings.Index(page, "<main")+1):])}
	}
	if strings.TrimSpace(m[1]) != p.Name {
		c.leak = true
	}
	for _, other := range all {
		if other.ID != p.ID && (strings.Contains(page, other.Name) || strings.Contains(page, other.ID)) {
			c.leak = true
		}
	}
	return c
}
