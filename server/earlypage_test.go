package server_test

import (
	"bufio"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"smartlabs/server"
	"smartlabs/server/ehrsim"
)

// heldSearch holds every Observation search request until open is closed,
// then answers it with status (or passes it on when status is 0).
type heldSearch struct {
	open   chan struct{}
	status int
}

func (hs *heldSearch) RoundTrip(r *http.Request) (*http.Response, error) {
	if strings.HasSuffix(r.URL.Path, "/Observation") {
		select {
		case <-hs.open:
		case <-r.Context().Done():
			return nil, r.Context().Err()
		}
		if hs.status != 0 {
			return &http.Response{StatusCode: hs.status, Header: http.Header{"Content-Type": {"text/plain"}},
				Body: io.NopCloser(strings.NewReader("unavailable")), Request: r}, nil
		}
	}
	return http.DefaultTransport.RoundTrip(r)
}

// readUntil reads r until it has read mark, and returns what it read; it
// fails the test when r ends first or nothing arrives for a long time.
func readUntil(t *testing.T, r *bufio.Reader, mark string) string {
	t.Helper()
	got := make(chan string, 1)
	go func() {
		var sb strings.Builder
		for !strings.Contains(sb.String(), mark) {
			b, err := r.ReadByte()
			if err != nil {
				break
			}
			sb.WriteByte(b)
		}
		got <- sb.String()
	}()
	select {
	case s := <-got:
		if !strings.Contains(s, mark) {
			t.Fatalf("the page ended before %q: %.300q", mark, s)
		}
		return s
	case <-time.After(30 * time.Second):
		t.Fatalf("%q never arrived while the search was held", mark)
		return ""
	}
}

// TestPageBeginsBeforeFirstResults: while the EHR has not answered the
// search, the labs page has already sent its head (stylesheet and script),
// the shell and the banner's reserved space; the view follows once the
// first page arrives. When the search fails instead, the view that follows
// in the same page says the list is incomplete.
func TestPageBeginsBeforeFirstResults(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		want   string
	}{
		{"results", 0, `data-testid="summary-line"`},
		{"EHR fault", http.StatusServiceUnavailable, "This list is incomplete: the EHR had a problem"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hs := &heldSearch{open: make(chan struct{}), status: tc.status}
			t.Cleanup(func() {
				select {
				case <-hs.open:
				default:
					close(hs.open)
				}
			})
			h := newHarness(t, harnessOptions{
				Switches: ehrsim.Switches{},
				Deps:     func(d *server.Deps) { d.HTTPClient.Transport = hs },
			})
			b := newBrowser(t)
			resp, err := b.c.Get(h.LaunchURL(h.Patient("Lin").ID))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Request.URL.Path, "/l/") {
				t.Fatalf("launch ends at %s with %d", resp.Request.URL.Path, resp.StatusCode)
			}
			r := bufio.NewReader(resp.Body)
			head := readUntil(t, r, `data-testid="banner-pending"`)
			for _, part := range []string{`rel="stylesheet"`, `<script src="/static/`, "</head>", `<main`} {
				if !strings.Contains(head, part) {
					t.Errorf("the part sent before any result lacks %q", part)
				}
			}
			if strings.Contains(head, `data-testid="summary-line"`) || strings.Contains(head, "incomplete") {
				t.Fatal("results or an error came before the search was answered")
			}
			close(hs.open)
			rest, _ := io.ReadAll(r)
			if !strings.Contains(string(rest), tc.want) {
				t.Errorf("the rest of the page lacks %q: %.400q", tc.want, rest)
			}
			if !strings.HasSuffix(strings.TrimSpace(string(rest)), "</html>") {
				t.Error("the page does not end as a complete document")
			}
		})
	}
}
