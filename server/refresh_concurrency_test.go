package server_test

import (
	"io"
	"net/http"
	"sync"
	"testing"
)

// TestConcurrentRefreshes: many Refresh clicks at once (a double click, several
// tabs) all get the list, none an error: they share one fetch.
func TestConcurrentRefreshes(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	b := newBrowser(t)
	resp, _ := mustLaunch(t, h, b, h.Patient("Okafor"))
	u := resp.Request.URL.String() + "/labs"

	var wg sync.WaitGroup
	codes := make(chan int, 20)
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("GET", u, nil)
			req.Header.Set("HX-Request", "true")
			req.Header.Set("X-Smartlabs-CSRF", "1")
			r, err := b.c.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			io.Copy(io.Discard, r.Body)
			r.Body.Close()
			codes <- r.StatusCode
		}()
	}
	wg.Wait()
	close(codes)
	for c := range codes {
		if c != http.StatusOK {
			t.Errorf("a concurrent Refresh answered %d", c)
		}
	}
}
