package simclient

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
)

// Entries returns the Observation entries of the pages exactly as the
// simulator sent them (raw JSON, one per entry, outcome entries left out).
func Entries(f *Fetched) ([][]byte, error) {
	var out [][]byte
	for _, p := range f.Pages {
		var b struct {
			Entry []json.RawMessage `json:"entry"`
		}
		if err := json.Unmarshal(p, &b); err != nil {
			return nil, err
		}
		for _, e := range b.Entry {
			if bytes.Contains(e, []byte(`"resourceType":"Observation"`)) {
				out = append(out, e)
			}
		}
	}
	return out, nil
}

// Paginate builds searchset Bundles of pageSize entries holding n results,
// cycling through entries; copy k > 0 of an entry gets ids prefixed "cK-" so
// every result stays distinct. Page i links to the next page as
// iss/Observation?sessionID=pI+1, as the simulator's opaque cursors do.
func Paginate(entries [][]byte, n, pageSize int, iss string) [][]byte {
	var pages [][]byte
	for start := 0; start < n; start += pageSize {
		var b bytes.Buffer
		fmt.Fprintf(&b, `{"resourceType":"Bundle","type":"searchset","total":%d,"link":[{"relation":"self","url":"%s/Observation?sessionID=p%d"}`, n, iss, len(pages))
		if start+pageSize < n {
			fmt.Fprintf(&b, `,{"relation":"next","url":"%s/Observation?sessionID=p%d"}`, iss, len(pages)+1)
		}
		b.WriteString(`],"entry":[`)
		for i := start; i < min(start+pageSize, n); i++ {
			if i > start {
				b.WriteByte(',')
			}
			e := entries[i%len(entries)]
			if k := i / len(entries); k > 0 {
				e = bytes.ReplaceAll(e, []byte(`"id":"`), fmt.Appendf(nil, `"id":"c%d-`, k))
			}
			b.Write(e)
		}
		b.WriteString(`]}`)
		pages = append(pages, b.Bytes())
	}
	return pages
}

// PageTransport is an http.RoundTripper that answers a search from prepared
// pages without a network: the first search (any URL without sessionID) gets
// page 0, iss/Observation?sessionID=pI gets page I, Patient/{id} gets Patient.
type PageTransport struct {
	Pages   [][]byte
	Patient []byte

	mu    sync.Mutex
	count int
}

// Requests returns how many requests the transport answered.
func (t *PageTransport) Requests() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.count
}

// RoundTrip implements http.RoundTripper.
func (t *PageTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	t.mu.Lock()
	t.count++
	t.mu.Unlock()
	body, status := []byte(`{"resourceType":"OperationOutcome"}`), http.StatusNotFound
	switch {
	case strings.Contains(r.URL.Path, "/Patient/") && t.Patient != nil:
		body, status = t.Patient, http.StatusOK
	case strings.HasSuffix(r.URL.Path, "/Observation"):
		var i int
		if sid := r.URL.Query().Get("sessionID"); sid == "" {
			i = 0
		} else if _, err := fmt.Sscanf(sid, "p%d", &i); err != nil {
			i = -1
		}
		if i >= 0 && i < len(t.Pages) {
			body, status = t.Pages[i], http.StatusOK
		}
	}
	return &http.Response{
		StatusCode: status, Status: http.StatusText(status), Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:        http.Header{"Content-Type": {"application/fhir+json"}},
		Body:          readCloser{bytes.NewReader(body)},
		ContentLength: int64(len(body)), Request: r,
	}, nil
}

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }
