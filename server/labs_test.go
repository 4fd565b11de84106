package server_test

import (
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"

	"smartlabs/server/ehrsim"
	"smartlabs/server/servertest"
)

// mustFollowPolls follows the updates of a labs page as htmx does: while
// the view has a live element, it GETs that element's URL (a long poll) and
// applies the answer to doc: the out-of-band swaps, and the answer's own
// content in the element's place; an error answer replaces #labs. It
// returns doc, which then shows the complete view (or the error).
func mustFollowPolls(t testing.TB, b *browser, appURL string, doc *goquery.Document) *goquery.Document {
	t.Helper()
	for range 1000 {
		live := doc.Find("#labs-live")
		u := live.AttrOr("hx-get", "")
		if live.Length() == 0 {
			return doc
		}
		if !strings.HasPrefix(u, "/l/") || live.AttrOr("hx-target", "") != "this" {
			t.Fatalf("the live element polls %q into %q", u, live.AttrOr("hx-target", ""))
		}
		resp, body := mustPoll(t, b, appURL+u)
		if resp.Header.Get("HX-Push-Url") != "" {
			t.Errorf("a poll pushed the URL %q", resp.Header.Get("HX-Push-Url"))
		}
		if target := resp.Header.Get("HX-Retarget"); target != "" {
			if target != "#labs" || resp.Header.Get("HX-Reswap") != "outerHTML" {
				t.Fatalf("a poll retargets %q with %q", target, resp.Header.Get("HX-Reswap"))
			}
			mustApplyUpdate(t, doc, oobOf(body))
			continue
		}
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("poll answered %d: %.300s", resp.StatusCode, body)
		}
		mustApplyUpdate(t, doc, body)
		main, err := goquery.NewDocumentFromReader(strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		// What is left of the answer after its swaps takes the element's place.
		main.Find("[hx-swap-oob], template").Remove()
		next := main.Find("body").Children()
		if next.Length() > 0 {
			live.ReplaceWithSelection(next)
		} else {
			live.Remove()
		}
	}
	t.Fatal("the results never finished loading")
	return nil
}

// oobOf makes an answer that replaces #labs (a whole view, or an error)
// into the out-of-band swap htmx would make of it after HX-Retarget.
func oobOf(body string) string {
	return strings.Replace(body, `id="labs"`, `id="labs" hx-swap-oob="true"`, 1)
}

// mustPoll GETs u as htmx does for the live element's poll.
func mustPoll(t testing.TB, b *browser, u string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("HX-Request", "true")
	req.Header.Set("HX-Target", "labs-live")
	req.Header.Set("HX-Trigger", "labs-live")
	req.Header.Set("X-Smartlabs-CSRF", "1")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	resp, err := b.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(body)
}

// mustApplyUpdate applies an update, htmx out-of-band swaps, to doc as htmx
// does: the top-level swaps first, then those in templates, each in order.
func mustApplyUpdate(t testing.TB, doc *goquery.Document, update string) {
	t.Helper()
	nodes, err := html.ParseFragment(strings.NewReader(update), &html.Node{Type: html.ElementNode, DataAtom: atom.Body, Data: "body"})
	if err != nil {
		t.Fatal(err)
	}
	var top, inTemplates []*html.Node
	for _, n := range nodes {
		if n.Type != html.ElementNode {
			continue
		}
		if n.Data == "template" {
			for c := n.FirstChild; c != nil; c = c.NextSibling {
				if c.Type == html.ElementNode && attr(c, "hx-swap-oob") != "" {
					inTemplates = append(inTemplates, c)
				}
			}
		} else if attr(n, "hx-swap-oob") != "" {
			top = append(top, n)
		}
	}
	for _, n := range append(top, inTemplates...) {
		how := attr(n, "hx-swap-oob")
		removeAttr(n, "hx-swap-oob")
		style, sel := "outerHTML", "#"+attr(n, "id")
		if how != "true" {
			style = how
			if a, b, ok := strings.Cut(how, ":"); ok {
				style, sel = a, b
			}
		}
		target := doc.Find(sel)
		if target.Length() == 0 {
			continue // htmx too skips a swap whose target is gone
		}
		var kids []*html.Node
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			kids = append(kids, c)
		}
		for _, c := range kids {
			n.RemoveChild(c)
		}
		switch style {
		case "outerHTML":
			for c := range slices.Values(kids) {
				n.AppendChild(c)
			}
			target.ReplaceWithNodes(n)
		case "delete":
			target.Remove()
		case "afterend":
			target.AfterNodes(kids...)
		case "afterbegin":
			target.PrependNodes(kids...)
		default:
			t.Fatalf("swap %q is not one the updates use", style)
		}
	}
}

func attr(n *html.Node, name string) string {
	for _, a := range n.Attr {
		if a.Key == name {
			return a.Val
		}
	}
	return ""
}

func removeAttr(n *html.Node, name string) {
	n.Attr = slices.DeleteFunc(n.Attr, func(a html.Attribute) bool { return a.Key == name })
}

// getFragment GETs u as htmx does for a request that targets the element with
// id target, triggered by the element with id trigger ("" for none).
func getFragment(t testing.TB, b *browser, u, target, trigger string) (*http.Response, *goquery.Document) {
	t.Helper()
	b.headers.Set("HX-Request", "true")
	b.headers.Set("X-Smartlabs-CSRF", "1")
	b.headers.Set("HX-Target", target)
	if trigger != "" {
		b.headers.Set("HX-Trigger", trigger)
	}
	defer func() {
		for _, k := range []string{"HX-Request", "X-Smartlabs-CSRF", "HX-Target", "HX-Trigger"} {
			b.headers.Del(k)
		}
	}()
	resp, doc, _ := b.get(u)
	return resp, doc
}

// launchAndLoad launches the patient, waits for every page, and returns the labs page URL.
func launchAndLoad(t *testing.T, h *harness, b *browser, name string) string {
	t.Helper()
	resp, _ := mustLaunch(t, h, b, h.Patient(name))
	return resp.Request.URL.String()
}

// TestPeriodFiltersFollowTheClock: "7 days", "30 days" and "1 year" are
// counted back from the app's clock, and the simulator's data ends just
// before that clock, so each period shows its recent results whatever the date.
func TestPeriodFiltersFollowTheClock(t *testing.T) {
	for _, at := range []time.Time{
		time.Date(2020, time.February, 29, 12, 0, 0, 0, time.UTC),
		time.Date(2031, time.July, 15, 4, 30, 0, 0, time.UTC),
	} {
		t.Run(at.Format("2006-01-02"), func(t *testing.T) {
			clk := servertest.NewClock(at)
			h := newHarness(t, harnessOptions{Now: clk.Now})
			b := newBrowser(t)
			p := h.Patient("Reyes")
			labsURL := launchAndLoad(t, h, b, "Reyes")
			all := p.ResultCount - p.EnteredInError
			prev := 0
			for _, period := range []struct {
				query string
				days  int
			}{{"7d", 7}, {"30d", 30}, {"1y", 366}} {
				_, doc, _ := b.getList(labsURL + "?view=all&range=" + period.query)
				rows := doc.Find(`[data-testid="result-row"]`)
				if rows.Length() == 0 || rows.Length() < prev || rows.Length() >= all {
					t.Errorf("%s shows %d rows (the shorter period %d, all %d)", period.query, rows.Length(), prev, all)
				}
				prev = rows.Length()
				now := clk.Now()
				from := now.AddDate(0, 0, -period.days)
				rows.Find(`[data-testid="collected"] time`).EachWithBreak(func(_ int, s *goquery.Selection) bool {
					when, err := time.Parse(time.RFC3339, s.AttrOr("datetime", ""))
					if err != nil || when.Before(from) || when.After(now) {
						t.Errorf("%s shows a result collected %q, outside %v to %v", period.query, s.AttrOr("datetime", ""), from, now)
						return false
					}
					return true
				})
			}
		})
	}
}

// TestFiltersUseTheCache: every filter, view and drill-down after the first
// load is answered without any new FHIR request; Refresh fetches again.
func TestFiltersUseTheCache(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	b := newBrowser(t)
	p := h.Patient("Lin")
	labsURL := launchAndLoad(t, h, b, "Lin")
	before := h.CountSimRequests("/fhir/R4/")

	// The summary: one line per analyte, every result counted once.
	_, doc, _ := b.get(labsURL)
	total := 0
	doc.Find(`[data-testid="summary-line"]`).Each(func(_ int, s *goquery.Selection) {
		n, _ := strconv.Atoi(strings.Fields(strings.ReplaceAll(strings.TrimSpace(s.Find(`[data-testid="analyte-count"]`).Text()), ",", ""))[0])
		total += n
	})
	if want := p.ResultCount - p.EnteredInError; total != want {
		t.Errorf("summary lines count %d results, want %d", total, want)
	}
	if doc.Find(`[data-testid="summary-group"][data-kind="critical"]`).Length() == 1 {
		first := doc.Find(`[data-testid="summary-group"]`).First()
		if first.AttrOr("data-kind", "") != "critical" || first.Find(`[data-testid="summary-line"]:not([data-critical])`).Length() != 0 {
			t.Error("critical results are not pinned first, alone")
		}
	}

	tests := []struct {
		name  string
		query string
		check func(t *testing.T, doc *goquery.Document)
	}{
		{"search", "q=potass", func(t *testing.T, doc *goquery.Document) {
			lines := doc.Find(`[data-testid="analyte-link"]`)
			if lines.Length() != 1 || !strings.Contains(strings.ToLower(lines.Text()), "potassium") {
				t.Errorf("search lines: %q", lines.Text())
			}
		}},
		{"abnormal rows", "view=all&abnormal=1", func(t *testing.T, doc *goquery.Document) {
			rows := doc.Find(`[data-testid="result-row"]`)
			flagged := rows.Filter(`:has([data-testid="flag"])`)
			if rows.Length() == 0 || rows.Length() != flagged.Length() {
				t.Errorf("abnormal only: %d rows, %d flagged", rows.Length(), flagged.Length())
			}
		}},
		{"30 days", "view=all&range=30d", func(t *testing.T, doc *goquery.Document) {
			rows := doc.Find(`[data-testid="result-row"]`).Length()
			if rows == 0 || rows >= p.ResultCount-p.EnteredInError {
				t.Errorf("30 days shows %d rows", rows)
			}
		}},
		{"status", "view=all&status=corrected", func(t *testing.T, doc *goquery.Document) {
			rows := doc.Find(`[data-testid="result-row"]`)
			if rows.Length() == 0 || rows.Length() != rows.Find(`[data-testid="status-note"]:contains("Corrected")`).Length() {
				t.Errorf("corrected only: %d rows", rows.Length())
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, doc := getFragment(t, b, labsURL+"?"+tt.query, "labs-results", "")
			if resp.StatusCode != http.StatusOK || doc.Find("#labs-results").Length() != 1 || doc.Find("html > body > #labs").Length() != 0 {
				t.Fatalf("fragment: status %d", resp.StatusCode)
			}
			push, _ := url.Parse(resp.Header.Get("HX-Push-Url"))
			if push == nil || push.Path != strings.TrimPrefix(labsURL, h.AppURL) {
				t.Errorf("HX-Push-Url = %q", resp.Header.Get("HX-Push-Url"))
			}
			tt.check(t, doc)
			// The pushed URL, loaded as a page (reload, back button), shows the same view.
			_, page, _ := b.get(h.AppURL + push.String())
			tt.check(t, page)
		})
	}

	// A drill-down, as a fragment and as a deep-linked page.
	key := doc.Find(`[data-testid="summary-line"]`).First().AttrOr("data-key", "")
	resp, frag := getFragment(t, b, labsURL+"/a/"+key, "labs", "")
	if resp.StatusCode != http.StatusOK || frag.Find(`[data-testid="analyte"]`).Length() != 1 {
		t.Fatalf("drill-down fragment: %d", resp.StatusCode)
	}
	_, page, _ := b.get(labsURL + "/a/" + key)
	if page.Find(`[data-testid="analyte-name"]`).Length() != 1 || page.Find(`[data-testid="chart"]`).Length() != 1 {
		t.Error("drill-down page lacks its heading or chart")
	}
	for _, bad := range []string{"/a/nope", "/a/..%2f..%2fetc", "/a/9999-9"} {
		if r, _, _ := b.get(labsURL + bad); r.StatusCode != http.StatusNotFound {
			t.Errorf("%s: status %d, want 404", bad, r.StatusCode)
		}
	}
	if after := h.CountSimRequests("/fhir/R4/"); after != before {
		t.Fatalf("filters made %d FHIR requests, want 0", after-before)
	}
	if n := strings.Count(strings.TrimSpace(h.Audit.String()), "\n") + 1; n != 1 {
		t.Errorf("audit events = %d, want 1 (one per fetch)", n)
	}

	// Refresh fetches again.
	resp, _ = getFragment(t, b, labsURL+"/labs", "labs", "")
	if resp.StatusCode != http.StatusOK || h.CountSimRequests("/fhir/R4/Observation") == 0 || h.CountSimRequests("/fhir/R4/") == before {
		t.Errorf("Refresh: status %d, no new FHIR request", resp.StatusCode)
	}
}

// TestProgressiveLoading: the first answer shows the first page and says how
// much has arrived; polls bring the rest without a reload.
func TestProgressiveLoading(t *testing.T) {
	h := newHarness(t, harnessOptions{Switches: ehrsim.Switches{Latency: 5 * time.Millisecond}})
	b := newBrowser(t)
	p := h.Patient("Large")
	resp, doc, _ := b.get(h.LaunchURL(p.ID))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("launch: %d", resp.StatusCode)
	}
	progress := text(doc, "progress")
	if !strings.HasPrefix(progress, "Loaded ") || !strings.HasSuffix(progress, " of 5,000…") {
		t.Fatalf("first answer's progress line = %q", progress)
	}
	if doc.Find(`[data-testid="summary-line"]`).Length() == 0 {
		t.Error("the first page of results is not shown while the rest load")
	}
	if doc.Find(`[data-testid="banner-pending"]`).Length() != 1 {
		t.Error("no space reserved for the banner while the patient loads")
	}
	last := mustFollowPolls(t, b, h.AppURL, doc)
	if got := text(last, "result-count"); got != thousands(p.ResultCount-p.EnteredInError)+" results" {
		t.Errorf("final count = %q, want %d results", got, p.ResultCount-p.EnteredInError)
	}
	if text(last, "banner-name") != p.Name {
		t.Errorf("final answer brings banner %q, want %q", text(last, "banner-name"), p.Name)
	}
	if last.Find(`[data-testid="progress"]`).Length() != 0 {
		t.Error("the final view still shows progress")
	}
}

func thousands(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// TestTheme: the EHR's style document becomes our CSS variables, served
// same-origin. (Refusing a style URL on another host is tested in server/theme.)
func TestTheme(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	b := newBrowser(t)
	labsURL := launchAndLoad(t, h, b, "Okafor")
	_, doc, _ := b.get(labsURL)
	link := doc.Find(`link[data-testid="theme"]`).AttrOr("href", "")
	if link != strings.TrimPrefix(labsURL, h.AppURL)+"/theme.css" {
		t.Fatalf("theme link = %q", link)
	}
	resp, _, css := b.get(h.AppURL + link)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/css") {
		t.Fatalf("theme: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	for _, want := range []string{"--sl-bg: #eef1f4;", "--sl-accent: #2a4d69;", "--sl-font-body: Segoe UI, Arial, sans-serif;"} {
		if !strings.Contains(css, want) {
			t.Errorf("theme lacks %q:\n%s", want, css)
		}
	}
}

// TestAllResultsPaginated: All results shows labs.ListPageSize rows a page,
// each page at its own URL; the pages together show every result once, in
// the filter's order, and a filter or sort applies across all pages.
func TestAllResultsPaginated(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	b := newBrowser(t)
	p := h.Patient("Lin")
	labsURL := launchAndLoad(t, h, b, "Lin")
	want := p.ResultCount - p.EnteredInError
	if want <= 2*200 {
		t.Fatalf("Lin has %d results: too few to need three pages", want)
	}

	resp, first, _ := b.get(labsURL + "?view=all")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("page 1: status %d", resp.StatusCode)
	}
	if n := first.Find(`[data-testid="result-row"]`).Length(); n != 200 {
		t.Errorf("page 1 shows %d rows, want 200", n)
	}
	if got := text(first, "result-count"); got != thousands(want)+" results" {
		t.Errorf("count line says %q, want every result counted", got)
	}
	next := first.Find(`[data-testid="list-next"]`).AttrOr("href", "")
	if u, _ := url.Parse(next); u == nil || u.Query().Get("page") != "2" || u.Query().Get("view") != "all" {
		t.Fatalf("Next links to %q", next)
	}
	if first.Find(`[data-testid="list-prev"]`).Length() != 0 {
		t.Error("page 1 links to a previous page")
	}

	// Every page, by its own URL: every result once, newest first throughout.
	_, all, _ := b.getList(labsURL + "?view=all")
	seen := map[string]bool{}
	var last string
	all.Find(`[data-testid="result-row"]`).Each(func(_ int, s *goquery.Selection) {
		id := s.AttrOr("data-id", "")
		if seen[id] {
			t.Errorf("result %s on two pages", id)
		}
		seen[id] = true
		if at := s.Find(`[data-testid="collected"] time`).AttrOr("datetime", ""); at != "" {
			if last != "" && at > last {
				t.Errorf("result collected %s after one collected %s: not newest first across pages", at, last)
			}
			last = at
		}
	})
	if len(seen) != want {
		t.Errorf("the pages show %d results, want %d", len(seen), want)
	}

	// The last page: Previous, no Next, and a page past it shows the last.
	pages := (want + 199) / 200
	_, lastPage, _ := b.get(labsURL + "?view=all&page=" + strconv.Itoa(pages))
	_, beyond, _ := b.get(labsURL + "?view=all&page=" + strconv.Itoa(pages+5))
	for name, doc := range map[string]*goquery.Document{"last": lastPage, "beyond": beyond} {
		if doc.Find(`[data-testid="list-next"]`).Length() != 0 || doc.Find(`[data-testid="list-prev"]`).Length() != 1 {
			t.Errorf("%s page: Next %d, Previous %d; want only Previous", name, doc.Find(`[data-testid="list-next"]`).Length(), doc.Find(`[data-testid="list-prev"]`).Length())
		}
		if n := doc.Find(`[data-testid="result-row"]`).Length(); n != want-(pages-1)*200 {
			t.Errorf("%s page shows %d rows, want %d", name, n, want-(pages-1)*200)
		}
	}

	// Sorted by name: the order runs on across pages; the filter stays in
	// the links, and a page is a fragment for htmx too.
	_, byName, _ := b.getList(labsURL + "?view=all&sort=name&range=1y")
	var names []string
	byName.Find(`[data-testid="result-row"] [data-testid="name"]`).Each(func(_ int, s *goquery.Selection) {
		names = append(names, strings.ToLower(strings.TrimSpace(s.Text())))
	})
	if len(names) == 0 || !slices.IsSorted(names) {
		t.Errorf("sorted by name across pages: %d rows, sorted %v", len(names), slices.IsSorted(names))
	}
	r, frag := getFragment(t, b, labsURL+"?view=all&sort=name&page=2", "labs-results", "")
	if r.StatusCode != http.StatusOK || frag.Find(`[data-testid="result-row"]`).Length() == 0 {
		t.Fatalf("page 2 as a fragment: status %d", r.StatusCode)
	}
	if push, _ := url.Parse(r.Header.Get("HX-Push-Url")); push == nil || push.Query().Get("page") != "2" || push.Query().Get("sort") != "name" {
		t.Errorf("page 2 pushes %q, want its own URL", r.Header.Get("HX-Push-Url"))
	}
	if u, _ := url.Parse(frag.Find(`[data-testid="list-prev"]`).AttrOr("href", "")); u == nil || u.Query().Get("sort") != "name" {
		t.Errorf("Previous of a sorted page drops the sort")
	}
}
