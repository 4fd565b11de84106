// Package load_test is the server overhead and throughput benchmark (make
// load): many launches through the simulator, then the labs fragment against
// a FHIR server with a fixed latency, and the cached labs view and a filter
// partial under a Go load generator, for the memory and the Redis session
// stores, then full EHR launches with a leak check and the memory per
// session. Loopback only, bounded in time and requests; it runs only when
// LoadEnv is set, so the normal test command skips it.
package load_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"smartlabs/server/config"
	"smartlabs/server/ehrsim"
	"smartlabs/server/servertest"
)

// LoadEnv turns the benchmark on; LoadOutEnv names the markdown file it writes.
const (
	LoadEnv    = "SMARTLABS_BENCH_LOAD"
	LoadOutEnv = "SMARTLABS_LOAD_OUT"
)

const (
	stubLatency = 20 * time.Millisecond
	connections = 64
	phaseTime   = 3 * time.Second
	maxRequests = 30000
)

// browser is one launch's cookie and view path, as a browser would hold them.
type browser struct {
	cookies map[string]string
	path    string // /l/{launch id}
}

func TestLoad(t *testing.T) {
	if os.Getenv(LoadEnv) == "" {
		t.Skip("load benchmark: run with make load (" + LoadEnv + "=1)")
	}
	var out strings.Builder
	fmt.Fprintf(&out, "### Server overhead and throughput (%d CPUs, GOMAXPROCS %d, loopback)\n\n", runtime.NumCPU(), runtime.GOMAXPROCS(0))
	fmt.Fprintf(&out, "| store | measure | conns | requests | req/s | p50 | p99 | errors |\n|---|---|---:|---:|---:|---:|---:|---:|\n")
	var mem, costs []string
	for _, store := range []string{"memory", "redis"} {
		t.Run(store, func(t *testing.T) {
			opts := servertest.Options{Switches: ehrsim.Switches{Latency: stubLatency},
				Mutate: func(c *config.Config) { c.FHIR.PageSize = 100 }}
			redisURL := ""
			if store == "redis" {
				redisURL = servertest.StartRedis(t).URL
				opts.RedisURL = redisURL
			}
			env := servertest.New(t, opts)
			hc := &http.Client{
				Transport: &http.Transport{MaxIdleConnsPerHost: connections, MaxConnsPerHost: connections},
				// Redirects are followed by hand, to carry the app's cookies.
				CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
				Timeout:       30 * time.Second,
			}
			small := smallestPatient(env)

			// Overhead: the labs fragment re-fetches from a FHIR server answering after a fixed latency.
			bs := launchMany(t, env, hc, small.ID, connections)
			for _, conc := range []int{1, connections} {
				r := run(conc, func(i int) error {
					b := bs[i%len(bs)]
					return get(hc, env.AppURL+b.path+"/labs", b, htmx(""))
				})
				fmt.Fprintf(&out, "| %s | labs fragment, re-fetch (%s, %d results, L = %v) | %d | %s |\n", store, small.Name, small.ResultCount, stubLatency, conc, r)
			}

			// Throughput from the per-launch cache: a large patient, every page loaded first.
			env.Sim.SetSwitches(ehrsim.Switches{})
			large := env.Patient("Large")
			var before runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			bl := launchMany(t, env, hc, large.ID, connections)
			for _, b := range bl {
				waitLoaded(t, hc, env, b)
			}
			var after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&after)
			per := (int64(after.HeapAlloc) - int64(before.HeapAlloc)) / int64(len(bl))
			mem = append(mem, fmt.Sprintf("| %s | %s (%d results), results cached | %d | %.1f MB |", store, large.Name, large.ResultCount, len(bl), float64(per)/(1<<20)))

			costs = append(costs, viewCost(t, env, hc, bl[0], store, large, redisURL)...)

			for _, m := range []struct {
				name  string
				query string
				hdr   http.Header
				conc  int
			}{
				{"filter partial (q=glucose), cached", "?q=glucose", htmx("labs-results"), 1},
				{"filter partial (q=glucose), cached", "?q=glucose", htmx("labs-results"), connections},
				{"labs view, full page, cached", "", nil, connections},
			} {
				r := run(m.conc, func(i int) error {
					b := bl[i%len(bl)]
					return get(hc, env.AppURL+b.path+m.query, b, m.hdr)
				})
				fmt.Fprintf(&out, "| %s | %s | %d | %s |\n", store, m.name, m.conc, r)
			}
		})
	}
	fmt.Fprintf(&out, "\n| store | launches | active launches | heap per launch |\n|---|---|---:|---:|\n%s\n", strings.Join(mem, "\n"))
	fmt.Fprintf(&out, "\nTargets: labs fragment p50/p99 ≤ L + 2 ms = %v; filter partials ≥ 2,000/s with p99 ≤ 50 ms at %d connections.\n", stubLatency+2*time.Millisecond, connections)
	fmt.Fprintf(&out, "\n### Cost of a new filter view of a launch's cached results (one connection, each view a filter not asked before)\n\n"+
		"| store | view | views | CPU per view (server and load generator) | Redis commands per view |\n|---|---|---:|---:|---:|\n%s\n", strings.Join(costs, "\n"))
	fmt.Fprintf(&out, "\nTargets: CPU ≤ 15 ms per new filter view of 5,000 cached results; ≤ 2 Redis round trips per cached view. "+
		"CPU is the process's user and system time (getrusage) over the views, the Go client that asks for them included; "+
		"Redis commands are the server's total_commands_processed over them, less the first INFO that read it (each command is at most one round trip).\n")
	out.WriteString(launchTables(t))
	out.WriteString(isolationTable(t))
	t.Log("\n" + out.String())
	if path := os.Getenv(LoadOutEnv); path != "" {
		if err := os.WriteFile(path, []byte(out.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// htmx is the header set HTMX sends, with the app's anti-forgery header.
func htmx(target string) http.Header {
	h := http.Header{"Hx-Request": {"true"}, "X-Smartlabs-Csrf": {"1"}, "Sec-Fetch-Site": {"same-origin"}}
	if target != "" {
		h.Set("Hx-Target", target)
	}
	return h
}

// smallestPatient is the patient with the fewest results among those of the
// simulator's regular generator, so launch figures stay comparable as
// special-shape patients (edge-case numbers, Epic shapes, pending orders) come and go.
func smallestPatient(env *servertest.Env) ehrsim.PatientInfo {
	special := map[string]bool{"Edge": true, "Moreau": true, "Pending": true}
	var best ehrsim.PatientInfo
	for _, p := range env.Sim.Patients() {
		if p.ResultCount > 0 && !special[p.Family] && (best.ID == "" || p.ResultCount < best.ResultCount) {
			best = p
		}
	}
	return best
}

// launchMany does n EHR launches for the patient, each as its own browser, concurrently.
func launchMany(t *testing.T, env *servertest.Env, hc *http.Client, patientID string, n int) []*browser {
	t.Helper()
	out := make([]*browser, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			b, err := launch(env, hc, patientID)
			if err != nil {
				errs <- err
				return
			}
			out[i] = b
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	return out
}

// launch follows the EHR launch by hand: /launch, the simulator's authorize,
// /callback, keeping the app's cookies, and returns the view path.
func launch(env *servertest.Env, hc *http.Client, patientID string) (*browser, error) {
	b := &browser{cookies: map[string]string{}}
	next := env.LaunchURL(patientID)
	for range 8 {
		req, err := http.NewRequest(http.MethodGet, next, nil)
		if err != nil {
			return nil, err
		}
		if strings.HasPrefix(next, env.AppURL) {
			b.addCookies(req)
		}
		resp, err := hc.Do(req)
		if err != nil {
			return nil, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if strings.HasPrefix(next, env.AppURL) {
			for _, c := range resp.Cookies() {
				b.cookies[c.Name] = c.Value
			}
		}
		loc := resp.Header.Get("Location")
		if resp.StatusCode/100 != 3 || loc == "" {
			return nil, fmt.Errorf("launch stopped at HTTP %d", resp.StatusCode)
		}
		u, err := url.Parse(next)
		if err != nil {
			return nil, err
		}
		to, err := u.Parse(loc)
		if err != nil {
			return nil, err
		}
		if strings.HasPrefix(to.String(), env.AppURL+"/l/") {
			b.path = to.Path
			return b, nil
		}
		next = to.String()
	}
	return nil, fmt.Errorf("launch did not reach the labs view")
}

func (b *browser) addCookies(req *http.Request) {
	for k, v := range b.cookies {
		req.AddCookie(&http.Cookie{Name: k, Value: v})
	}
}

// waitLoaded reads the view until every page has arrived: the page no
// longer follows its updates (no #labs-live long poll).
func waitLoaded(t *testing.T, hc *http.Client, env *servertest.Env, b *browser) {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		req, _ := http.NewRequest(http.MethodGet, env.AppURL+b.path, nil)
		b.addCookies(req)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK && !strings.Contains(string(body), `data-testid="live"`) {
			return
		}
	}
	t.Fatal("the labs view never finished loading")
}

func get(hc *http.Client, u string, b *browser, h http.Header) error {
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	for k, v := range h {
		req.Header[k] = v
	}
	req.Header.Set("Accept-Encoding", "gzip")
	b.addCookies(req)
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return nil
}

// result is one load phase: requests, rate, latency percentiles and errors.
type result struct {
	n, errors int
	rps       float64
	p50, p99  time.Duration
}

func (r result) String() string {
	return fmt.Sprintf("%d | %.0f | %.1f ms | %.1f ms | %d", r.n, r.rps, ms(r.p50), ms(r.p99), r.errors)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// run sends requests from conc workers for phaseTime or maxRequests, whichever ends first.
func run(conc int, do func(i int) error) result {
	ctx, cancel := context.WithTimeout(context.Background(), phaseTime)
	defer cancel()
	var (
		mu      sync.Mutex
		lat     []time.Duration
		errs    int
		counter atomic.Int64
		wg      sync.WaitGroup
	)
	start := time.Now()
	for w := range conc {
		wg.Go(func() {
			var mine []time.Duration
			bad := 0
			for ctx.Err() == nil && counter.Add(1) <= maxRequests {
				t0 := time.Now()
				if err := do(w); err != nil {
					bad++
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, mine...)
			errs += bad
			mu.Unlock()
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	slices.Sort(lat)
	r := result{n: len(lat), errors: errs, rps: float64(len(lat)) / elapsed.Seconds()}
	if len(lat) > 0 {
		r.p50 = lat[len(lat)/2]
		r.p99 = lat[min(len(lat)-1, len(lat)*99/100)]
	}
	return r
}

// viewCost asks one launch's cached results (patient p, every page loaded)
// for filter views it has not been asked before, one at a time: the summary
// and the first page of All results, under every combination of period,
// abnormal only, sort and search text. It returns a table row per view
// kind: the CPU each view cost and, with the Redis store, the commands
// Redis processed for it.
func viewCost(t *testing.T, env *servertest.Env, hc *http.Client, b *browser, store string, p ehrsim.PatientInfo, redisURL string) []string {
	t.Helper()
	var rdb *redis.Client
	if redisURL != "" {
		opt, err := redis.ParseURL(redisURL)
		if err != nil {
			t.Fatal(err)
		}
		rdb = redis.NewClient(opt)
		defer rdb.Close()
	}
	commands := func() int64 {
		if rdb == nil {
			return 0
		}
		info, err := rdb.Info(context.Background(), "stats").Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(info, "\r\n") {
			if v, ok := strings.CutPrefix(line, "total_commands_processed:"); ok {
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					t.Fatal(err)
				}
				return n
			}
		}
		t.Fatal("redis INFO has no total_commands_processed")
		return 0
	}
	cpu := func() time.Duration {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			t.Fatal(err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	var rows []string
	for _, view := range []struct{ name, param string }{{"summary", ""}, {"All results, first page of 200", "&view=all"}} {
		var queries []string
		for _, r := range []string{"", "7d", "30d", "1y"} {
			for _, abnormal := range []string{"", "1"} {
				for _, sort := range []string{"", "name"} {
					for _, q := range []string{"", "g", "glu", "sodium", "k", "hemo", "chol", "cr", "a1c", "zz"} {
						queries = append(queries, "?range="+r+"&abnormal="+abnormal+"&sort="+sort+"&q="+url.QueryEscape(q)+view.param)
					}
				}
			}
		}
		// One view first, so that the connection and the session are warm.
		if err := get(hc, env.AppURL+b.path+"?warm=1"+view.param, b, htmx("labs-results")); err != nil {
			t.Fatal(err)
		}
		runtime.GC()
		c0, cpu0 := commands(), cpu()
		for _, q := range queries {
			if err := get(hc, env.AppURL+b.path+q, b, htmx("labs-results")); err != nil {
				t.Fatalf("%s%s: %v", b.path, q, err)
			}
		}
		perCPU := (cpu() - cpu0) / time.Duration(len(queries))
		perCmd := "—"
		if rdb != nil {
			perCmd = fmt.Sprintf("%.2f", float64(commands()-c0-1)/float64(len(queries)))
		}
		rows = append(rows, fmt.Sprintf("| %s | %s (%d results) | %d | %.2f ms | %s |", store, view.name, p.ResultCount, len(queries), ms(perCPU), perCmd))
	}
	return rows
}
