package load_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"smartlabs/server/config"
	"smartlabs/server/servertest"
	"smartlabs/server/session"
)

const (
	// launchPhaseTime and maxLaunches bound each launch phase.
	launchPhaseTime = 3 * time.Second
	maxLaunches     = 2000
	// memSessions is how many sessions the memory-per-session phase opens.
	memSessions = 300
	// settle is how long goroutines get to end before a state is read; a leak
	// check waits up to leakWait for them to get back to the baseline.
	settle   = 500 * time.Millisecond
	leakWait = 10 * time.Second
	// leakSlack is how many goroutines above the baseline still count as no leak
	// (a timer or connection closing a moment late).
	leakSlack = 2
)

// clientIP hands every simulated browser its own client address: each
// request carries it in X-Forwarded-For from a trusted proxy, as behind a
// load balancer, so the per-IP sign-in ceiling applies per browser.
var clientIP atomic.Uint32

func nextClientIP() string {
	n := clientIP.Add(1)
	return fmt.Sprintf("10.%d.%d.%d", (n>>16)&0xff, (n>>8)&0xff, n&0xff)
}

// launchEnv is the app behind a trusted proxy on loopback, with the store
// named, and the Redis URL when the store is Redis.
func launchEnv(t *testing.T, store string, mutate ...func(*config.Config)) (*servertest.Env, string) {
	t.Helper()
	opts := servertest.Options{Mutate: func(c *config.Config) {
		c.FHIR.PageSize = 100
		c.TrustedProxies = []string{"127.0.0.1"}
		for _, m := range mutate {
			m(c)
		}
	}}
	redisURL := ""
	if store == "redis" {
		redisURL = servertest.StartRedis(t).URL
		opts.RedisURL = redisURL
	}
	return servertest.New(t, opts), redisURL
}

// fullLaunch is one EHR launch from the chart to the first labs view: a
// launch token from the simulator, /launch, authorize, /callback and the
// labs page, all from one new browser with its own client address.
func fullLaunch(env *servertest.Env, hc *http.Client, patientID string, view bool) (*browser, error) {
	ip := nextClientIP()
	b, err := launchFrom(env, hc, patientID, ip)
	if err != nil || !view {
		return b, err
	}
	req, err := http.NewRequest(http.MethodGet, env.AppURL+b.path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("X-Forwarded-For", ip)
	b.addCookies(req)
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `data-testid="labs"`) {
		return nil, fmt.Errorf("first labs view: HTTP %d", resp.StatusCode)
	}
	return b, nil
}

// launchFrom is launch (load_test.go) with the browser's client address set
// on every request to the app.
func launchFrom(env *servertest.Env, hc *http.Client, patientID, ip string) (*browser, error) {
	return launch(env, &http.Client{
		Transport:     forwardedFor{ip: ip, appURL: env.AppURL, next: hc.Transport},
		CheckRedirect: hc.CheckRedirect,
		Timeout:       hc.Timeout,
	}, patientID)
}

// forwardedFor adds X-Forwarded-For to requests for the app, as the trusted proxy would.
type forwardedFor struct {
	ip, appURL string
	next       http.RoundTripper
}

func (f forwardedFor) RoundTrip(req *http.Request) (*http.Response, error) {
	if strings.HasPrefix(req.URL.String(), f.appURL) {
		req = req.Clone(req.Context())
		req.Header.Set("X-Forwarded-For", f.ip)
	}
	return f.next.RoundTrip(req)
}

// logout signs the browser out: its session and launch record are deleted
// and its cached results dropped.
func logout(env *servertest.Env, hc *http.Client, b *browser) error {
	req, err := http.NewRequest(http.MethodPost, env.AppURL+b.path+"/logout", nil)
	if err != nil {
		return err
	}
	for k, v := range htmx("") {
		req.Header[k] = v
	}
	b.addCookies(req)
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("logout: HTTP %d", resp.StatusCode)
	}
	return nil
}

// runtimeState is the process's goroutine count and live heap.
type runtimeState struct {
	goroutines int
	heap       uint64
}

// quiesce closes the client's idle connections, lets goroutines end, and
// collects garbage, then reads the runtime's state.
func quiesce(hc *http.Client) runtimeState {
	hc.CloseIdleConnections()
	time.Sleep(settle)
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return runtimeState{goroutines: runtime.NumGoroutine(), heap: m.HeapAlloc}
}

// launchRun is one launch phase's figures.
type launchRun struct {
	result
	browsers []*browser
}

// runLaunches does full launches from conc workers for launchPhaseTime or
// maxLaunches, whichever ends first.
func runLaunches(env *servertest.Env, hc *http.Client, patientID string, conc int) launchRun {
	ctx, cancel := context.WithTimeout(context.Background(), launchPhaseTime)
	defer cancel()
	var (
		mu      sync.Mutex
		lat     []time.Duration
		bs      []*browser
		errs    int
		counter atomic.Int64
		wg      sync.WaitGroup
	)
	start := time.Now()
	for range conc {
		wg.Go(func() {
			for ctx.Err() == nil && counter.Add(1) <= maxLaunches {
				t0 := time.Now()
				b, err := fullLaunch(env, hc, patientID, true)
				d := time.Since(t0)
				mu.Lock()
				lat = append(lat, d)
				if err != nil {
					errs++
				} else {
					bs = append(bs, b)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	slices.Sort(lat)
	r := launchRun{result: result{n: len(lat), errors: errs, rps: float64(len(lat)) / elapsed.Seconds()}, browsers: bs}
	if len(lat) > 0 {
		r.p50 = lat[len(lat)/2]
		r.p99 = lat[min(len(lat)-1, len(lat)*99/100)]
	}
	return r
}

// launchLoad runs full launches at concurrency 1 and 16 against one store,
// then signs every browser out and checks that goroutines return to their
// baseline. It returns the table rows and how many leaked goroutines it found.
func launchLoad(t *testing.T, store string) (rows []string, leaked int) {
	env, _ := launchEnv(t, store)
	hc := newClient()
	p := smallestPatient(env)
	// One launch first, so caches filled once per process (discovery, JWKS) are in the baseline.
	if _, err := fullLaunch(env, hc, p.ID, true); err != nil {
		t.Fatal(err)
	}
	env.Sim.ResetRequests()
	before := quiesce(hc)
	var all []*browser
	for _, conc := range []int{1, 16} {
		r := runLaunches(env, hc, p.ID, conc)
		all = append(all, r.browsers...)
		rows = append(rows, fmt.Sprintf("| %s | %d | %d | %.1f | %.1f ms | %.1f ms | %d |", store, conc, r.n, r.rps, ms(r.p50), ms(r.p99), r.errors))
	}
	peak := quiesce(hc)
	logoutErrs := 0
	for _, b := range all {
		if err := logout(env, hc, b); err != nil {
			logoutErrs++
		}
	}
	env.Sim.ResetRequests()
	// Goroutines that end late on a loaded machine are no leak: only those
	// still running after leakWait are.
	after := quiesce(hc)
	for deadline := time.Now().Add(leakWait); after.goroutines > before.goroutines+leakSlack && time.Now().Before(deadline); {
		after = quiesce(hc)
	}
	leaked = max(0, after.goroutines-before.goroutines-leakSlack)
	rows = append(rows, fmt.Sprintf("| %s | leak check: %d launches signed out (%d errors) | goroutines %d → %d (open %d) | heap %.1f → %.1f MB (open %.1f MB) | leaked goroutines: %d |",
		store, len(all), logoutErrs, before.goroutines, after.goroutines, peak.goroutines,
		mb(before.heap), mb(after.heap), mb(peak.heap), leaked))
	if logoutErrs > 0 {
		t.Errorf("%s: %d logouts failed", store, logoutErrs)
	}
	return rows, leaked
}

// sessionMemory opens memSessions sessions, each with one launch record
// (signed in, no labs viewed, so no cached results), and measures what each
// costs: for the memory store the Go heap freed when they are signed out
// again; for Redis its used_memory growth.
func sessionMemory(t *testing.T, store string) string {
	env, redisURL := launchEnv(t, store)
	hc := newClient()
	p := smallestPatient(env)
	if _, err := fullLaunch(env, hc, p.ID, false); err != nil {
		t.Fatal(err)
	}
	env.Sim.ResetRequests()
	redisBefore := redisUsedMemory(t, redisURL)
	bs := make([]*browser, memSessions)
	var wg sync.WaitGroup
	var failed atomic.Int32
	sem := make(chan struct{}, 16)
	for i := range bs {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			b, err := fullLaunch(env, hc, p.ID, false)
			if err != nil {
				failed.Add(1)
				return
			}
			bs[i] = b
		})
	}
	wg.Wait()
	if n := failed.Load(); n > 0 {
		t.Fatalf("%s: %d of %d launches failed", store, n, memSessions)
	}
	env.Sim.ResetRequests()
	open := quiesce(hc)
	redisOpen := redisUsedMemory(t, redisURL)
	for _, b := range bs {
		if err := logout(env, hc, b); err != nil {
			t.Fatal(err)
		}
	}
	env.Sim.ResetRequests()
	closed := quiesce(hc)
	heapPer := (int64(open.heap) - int64(closed.heap)) / memSessions
	row := fmt.Sprintf("| %s | %d | %.1f KB |", store, memSessions, float64(heapPer)/1024)
	if store == "redis" {
		row += fmt.Sprintf(" %.1f KB |", float64(redisOpen-redisBefore)/memSessions/1024)
	} else {
		row += " – |"
	}
	return row
}

// redisUsedMemory is Redis's INFO memory used_memory in bytes; 0 without Redis.
func redisUsedMemory(t *testing.T, redisURL string) int64 {
	t.Helper()
	if redisURL == "" {
		return 0
	}
	rc, err := session.NewRedisClient(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	info, err := rc.Info(context.Background(), "memory").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("INFO memory has no used_memory")
	return 0
}

// newClient is a load client that keeps connections and follows no redirects.
func newClient() *http.Client {
	return &http.Client{
		Transport:     &http.Transport{MaxIdleConnsPerHost: connections, MaxConnsPerHost: connections},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       30 * time.Second,
	}
}

func mb(b uint64) float64 { return float64(b) / (1 << 20) }

// launchTables runs the launch and memory phases for both stores and
// returns their markdown; it fails the test on launch errors or leaks.
func launchTables(t *testing.T) string {
	var out strings.Builder
	fmt.Fprintf(&out, "\n### Full EHR launches (chart launch token → /launch → authorize → /callback → first labs view; no added FHIR latency; %v or %d launches per row)\n\n", launchPhaseTime, maxLaunches)
	out.WriteString("| store | concurrency | launches | launches/s | p50 | p99 | errors |\n|---|---:|---:|---:|---:|---:|---:|\n")
	var mem []string
	for _, store := range []string{"memory", "redis"} {
		t.Run("launches-"+store, func(t *testing.T) {
			rows, leaked := launchLoad(t, store)
			out.WriteString(strings.Join(rows, "\n") + "\n")
			if leaked > 0 {
				t.Errorf("%s: %d goroutines leaked after every launch was signed out", store, leaked)
			}
			for _, r := range rows {
				if strings.HasSuffix(r, "|") && !strings.Contains(r, "leak check") && !strings.HasSuffix(r, "| 0 |") {
					t.Errorf("%s: launch errors: %s", store, r)
				}
			}
		})
		t.Run("session-memory-"+store, func(t *testing.T) {
			mem = append(mem, sessionMemory(t, store))
		})
	}
	out.WriteString("\nLeak check: goroutines and live heap (after two GCs and a " + settle.String() + " settle) before the launches, with every launch open, and after every launch was signed out; the process holds the app, the simulator (which keeps its issued tokens) and the load client.\n")
	out.WriteString("\n| store | sessions | Go heap per session + launch record | Redis used_memory per session |\n|---|---:|---:|---:|\n")
	out.WriteString(strings.Join(mem, "\n") + "\n")
	out.WriteString("\nMemory per session: signed-in browsers with one launch record each and no results viewed; the Go heap figure is what signing them out frees (after GC), the Redis figure is `INFO memory` used_memory growth while they were opened.\n")
	return out.String()
}
