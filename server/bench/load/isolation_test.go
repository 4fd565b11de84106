package load_test

import (
	"fmt"
	"html"
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

// liveRe finds the long poll of a view still loading: #labs-live's hx-get.
var liveRe = regexp.MustCompile(`id="labs-live"[^>]*hx-get="([^"]+)"`)

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
	// Read the page, then follow its updates as htmx does: the long poll
	// that #labs-live names, answered once more results arrived, until an
	// answer brings no further poll. No other patient may appear in the page
	// or in any update.
	deadline := time.Now().Add(120 * time.Second)
	get := func(u string, hx bool) (string, error) {
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		req.Header.Set("X-Forwarded-For", ip)
		if hx {
			for k, v := range htmx("labs-live") {
				req.Header[k] = v
			}
			req.Header.Set("HX-Trigger", "labs-live")
		}
		b.addCookies(req)
		resp, err := hc.Do(req)
		if err != nil {
			return "", err
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Header.Get("HX-Retarget") != "" {
			return "", fmt.Errorf("labs view: HTTP %d %s", resp.StatusCode, resp.Header.Get("HX-Retarget"))
		}
		return string(body), nil
	}
	page, err := get(env.AppURL+b.path, false)
	if err != nil {
		return isolationCheck{err: err}
	}
	seen := page
	for next := page; ; {
		m := liveRe.FindStringSubmatch(next)
		if m == nil {
			break
		}
		if time.Now().After(deadline) {
			return isolationCheck{err: fmt.Errorf("labs view never completed")}
		}
		if next, err = get(env.AppURL+html.UnescapeString(m[1]), true); err != nil {
			return isolationCheck{err: err}
		}
		seen += next
	}
	// The banner comes with the page or, while the patient is still
	// loading, with an update; every banner shown must name p.
	var c isolationCheck
	banners := bannerNameRe.FindAllStringSubmatch(seen, -1)
	if banners == nil {
		notice := regexp.MustCompile(`data-testid="notice"[^>]*>([^<]*)<`).FindStringSubmatch(seen)
		return isolationCheck{err: fmt.Errorf("labs view of %s has no patient banner (notice %q): %.400s", p.Name, notice, page[min(len(page), strings.Index(page, "<main")+1):])}
	}
	for _, m := range banners {
		if strings.TrimSpace(m[1]) != p.Name {
			c.leak = true
		}
	}
	for _, other := range all {
		if other.ID != p.ID && (strings.Contains(seen, other.Name) || strings.Contains(seen, other.ID)) {
			c.leak = true
		}
	}
	return c
}
