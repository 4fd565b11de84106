package ehrsim

import (
	"bytes"
	"html/template"
	"net/http"
	"net/url"
)

// pageCSS is the simulator's own tiny style; these pages are the EHR's, not the app's.
const pageCSS = `body{font-family:system-ui,sans-serif;margin:0;background:#eef1f4;color:#1d2733}
header{background:#2a4d69;color:#fff;padding:.6rem 1rem;display:flex;gap:1rem;align-items:baseline}
header h1{font-size:1.1rem;margin:0}header a{color:#fff}main{padding:1rem}
table{border-collapse:collapse;background:#fff}td,th{padding:.4rem .8rem;border-bottom:1px solid #d5dbe1;text-align:left}
a.button{background:#2a4d69;color:#fff;padding:.25rem .8rem;border-radius:4px;text-decoration:none}
.chart{display:flex;flex-direction:column;height:100vh}.chart iframe{flex:1;border:0;width:100%;background:#fff}`

var pageTemplates = template.Must(template.New("launchpad").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>EHR simulator</title><style>{{.CSS}}</style></head>
<body><header><h1>EHR simulator</h1><span>Synthetic patients only</span></header>
<main>
<table data-testid="patients">
<thead><tr><th>Patient</th><th>Birth date</th><th>Lab results</th><th></th></tr></thead>
<tbody>
{{range .Patients}}<tr data-testid="patient-{{.ID}}">
<td data-testid="patient-name">{{.Name}}</td><td>{{.BirthDate}}</td><td data-testid="result-count">{{.ResultCount}}</td>
<td><a class="button" data-testid="launch-{{.ID}}" href="/hyperspace?patient={{.ID}}">Launch</a></td></tr>
{{end}}</tbody></table>
<p><a data-testid="standalone-launch" href="{{.Standalone}}">Standalone launch</a> (the app asks the EHR to pick a patient)</p>
</main></body></html>
{{define "hyperspace"}}<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Patient.Name}} - Chart</title><style>{{.CSS}}</style></head>
<body class="chart"><div class="chart">
<header data-testid="chart-header"><h1 data-testid="chart-patient">{{.Patient.Name}}</h1><span>DOB {{.Patient.BirthDate}}</span>
<a href="/" data-testid="patient-list">Patient list</a></header>
<iframe data-testid="app-frame" title="Lab results app" src="{{.FrameURL}}"></iframe>
</div></body></html>{{end}}
{{define "error"}}<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Request refused</title><style>{{.CSS}}</style></head>
<body><header><h1>EHR simulator</h1></header>
<main><h2 data-testid="error-title">The request was refused</h2><p data-testid="error-message">{{.Message}}</p></main></body></html>{{end}}`))

// renderPage executes a template into a buffer first, so a failure never sends half a page.
func renderHTML(w http.ResponseWriter, status int, name string, data any) {
	var buf bytes.Buffer
	if err := pageTemplates.ExecuteTemplate(&buf, name, data); err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	// Pages carry launch tokens: never cache them.
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// launchURL returns the app's Launch URL with iss and, when non-empty, launch.
func (s *Sim) launchURL(launch string) string {
	u, err := url.Parse(s.appLaunchURL)
	if err != nil {
		return s.appLaunchURL
	}
	q := u.Query()
	q.Set("iss", s.ISS())
	if launch != "" {
		q.Set("launch", launch)
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// handleLaunchpad handles "GET /".
func (s *Sim) handleLaunchpad(w http.ResponseWriter, r *http.Request) {
	renderHTML(w, http.StatusOK, "launchpad", map[string]any{
		"CSS":        template.CSS(pageCSS),
		"Patients":   s.Patients(),
		"Standalone": s.launchURL(""),
	})
}

// handleHyperspace handles "GET /hyperspace": a chart page embedding the app.
func (s *Sim) handleHyperspace(w http.ResponseWriter, r *http.Request) {
	p := s.data.patient(r.URL.Query().Get("patient"))
	if p == nil {
		renderHTML(w, http.StatusNotFound, "error", map[string]any{"CSS": template.CSS(pageCSS), "Message": "Unknown patient."})
		return
	}
	clientID := r.URL.Query().Get("client")
	if clientID == "" {
		clientID = s.defaultClient()
	}
	launch, err := s.NewLaunch(p.id, clientID)
	if err != nil {
		renderHTML(w, http.StatusBadRequest, "error", map[string]any{"CSS": template.CSS(pageCSS), "Message": "Unknown client."})
		return
	}
	renderHTML(w, http.StatusOK, "hyperspace", map[string]any{
		"CSS":      template.CSS(pageCSS),
		"Patient":  p.info(),
		"FrameURL": s.launchURL(launch),
	})
}

// defaultClient is the first confidential client, else the first client.
func (s *Sim) defaultClient() string {
	for _, id := range s.clientOrder {
		if !s.clients[id].Public {
			return id
		}
	}
	return s.clientOrder[0]
}

// authorizeErrorPage answers an authorization request that must not be redirected.
func (s *Sim) authorizeErrorPage(w http.ResponseWriter, msg string) {
	renderHTML(w, http.StatusBadRequest, "error", map[string]any{"CSS": template.CSS(pageCSS), "Message": msg})
}

// handleStyle handles "GET /styles/smart.json", the smart_style_url document:
// the Style switch when set, else DefaultStyle.
func (s *Sim) handleStyle(w http.ResponseWriter, r *http.Request) {
	allowCORS(w)
	style := s.Switches().Style
	if style == nil {
		style = DefaultStyle()
	}
	writeJSON(w, http.StatusOK, "application/json", style)
}

// DefaultStyle is the simulator's own theme, in Epic's smart_style_url keys.
func DefaultStyle() map[string]string {
	return map[string]string{
		"color_background":     "#eef1f4",
		"color_error":          "#b3261e",
		"color_highlight":      "#2a4d69",
		"color_modal_backdrop": "#1d273380",
		"color_success":        "#2e7d32",
		"color_text":           "#1d2733",
		"dim_border_radius":    "4px",
		"dim_font_size":        "14px",
		"dim_spacing_size":     "16px",
		"font_family_body":     "Segoe UI, Arial, sans-serif",
		"font_family_heading":  "Segoe UI, Arial, sans-serif",
	}
}

// LowContrastStyle is a typical EHR theme that breaks contrast when used as
// sent: a mid-blue highlight, grey text and a pale error red on a light grey
// background. Its highlight, text, error and success colours are each below
// 4.5:1 (WCAG AA for text) against its background.
func LowContrastStyle() map[string]string {
	return map[string]string{
		"color_background":     "#e8e8e8",
		"color_error":          "#e06666",
		"color_highlight":      "#4a90d9",
		"color_modal_backdrop": "#00000066",
		"color_success":        "#6aa84f",
		"color_text":           "#7a7a7a",
		"dim_border_radius":    "2px",
		"dim_font_size":        "14px",
		"dim_spacing_size":     "12px",
		"font_family_body":     "Segoe UI, Arial, sans-serif",
		"font_family_heading":  "Segoe UI, Arial, sans-serif",
	}
}
