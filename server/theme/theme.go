// Package theme turns an EHR's SMART style document (smart_style_url) into a
// stylesheet of our CSS variables. Every value is checked against a strict
// pattern and anything else is dropped, so the EHR's document can change
// colours, sizes and fonts but can never add CSS of its own. Its colours
// never take text below 4.5:1, or borders, focus rings and chart marks below
// 3:1, against what they are drawn on (WCAG 2.1 AA): see palette.
package theme

import (
	"encoding/json"
	"net/url"
	"regexp"
	"sort"
	"strings"
)

// kind is the type of a style value, each with its own pattern.
type kind int

const (
	color kind = iota
	length
	font
)

// mapping is where one style key goes: which of our variables it sets.
type mapping struct {
	kind kind
	vars []string
}

// keys maps Epic's style keys (the smart_style_url document) to our variables.
var keys = map[string]mapping{
	"color_background":     {color, []string{"--sl-bg"}},
	"color_text":           {color, []string{"--sl-fg"}},
	"color_highlight":      {color, []string{"--sl-accent", "--sl-focus"}},
	"color_error":          {color, []string{"--sl-critical", "--sl-error-border"}},
	"color_success":        {color, []string{"--sl-success"}},
	"color_modal_backdrop": {color, []string{"--sl-backdrop"}},
	"dim_border_radius":    {length, []string{"--sl-radius"}},
	"dim_font_size":        {length, []string{"--sl-font-size"}},
	"dim_spacing_size":     {length, []string{"--sl-space"}},
	"font_family_body":     {font, []string{"--sl-font-body"}},
	"font_family_heading":  {font, []string{"--sl-font-heading"}},
}

var (
	hexColor = regexp.MustCompile(`^#(?:[0-9a-fA-F]{3,4}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})$`)
	rgbColor = regexp.MustCompile(`^rgba?\(\s*\d{1,3}%?\s*,\s*\d{1,3}%?\s*,\s*\d{1,3}%?\s*(?:,\s*(?:0|1|0?\.\d{1,3})\s*)?\)$`)
	lengthRe = regexp.MustCompile(`^(?:0|\d{1,3}(?:\.\d{1,3})?(?:px|rem|em|pt|%))$`)
	// A font family is a bare name of letters, digits, spaces and hyphens, or
	// such a name in quotes; nothing that could end a declaration or open url().
	familyBare   = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9 \-]{0,62}$`)
	familyQuoted = regexp.MustCompile(`^(?:"[A-Za-z0-9 \-]{1,62}"|'[A-Za-z0-9 \-]{1,62}')$`)
)

// valid reports whether v is an acceptable value of kind k.
func valid(k kind, v string) bool {
	switch k {
	case color:
		return hexColor.MatchString(v) || rgbColor.MatchString(v)
	case length:
		return lengthRe.MatchString(v)
	case font:
		if len(v) > 200 {
			return false
		}
		for _, f := range strings.Split(v, ",") {
			f = strings.TrimSpace(f)
			if !familyBare.MatchString(f) && !familyQuoted.MatchString(f) {
				return false
			}
		}
		return true
	}
	return false
}

// normalizeFont rewrites a checked font list with single spaces after commas.
func normalizeFont(v string) string {
	parts := strings.Split(v, ",")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	return strings.Join(parts, ", ")
}

// CSS returns the stylesheet for a style document: a :root rule setting our
// variables from the keys it knows whose values pass their pattern. Unknown
// keys, non-string values and values that fail their pattern are dropped. A
// document that is not a JSON object gives an empty stylesheet.
//
// Colours are never used as sent: each is resolved against the backgrounds it
// is drawn on (the palette), and text keeps 4.5:1, borders, focus rings and
// chart marks 3:1 (WCAG 2.1 AA), the EHR's colour moved along its own hue when
// it falls short. Colours are emitted as #rrggbb, and variables the EHR does
// not send are emitted too when its background changes them.
func CSS(doc []byte) []byte {
	var m map[string]any
	if err := json.Unmarshal(doc, &m); err != nil {
		return nil
	}
	var decls []string
	sent := map[string]rgba{}
	for k, raw := range m {
		mp, ok := keys[k]
		if !ok {
			continue
		}
		v, ok := raw.(string)
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		if !valid(mp.kind, v) {
			continue
		}
		switch mp.kind {
		case color:
			if c, ok := parseColor(v); ok {
				for _, name := range mp.vars {
					sent[name] = c
				}
			}
			continue
		case font:
			v = normalizeFont(v)
		}
		for _, name := range mp.vars {
			decls = append(decls, "  "+name+": "+v+";")
		}
	}
	for name, v := range colours(sent) {
		decls = append(decls, "  "+name+": "+v+";")
	}
	if len(decls) == 0 {
		return nil
	}
	sort.Strings(decls)
	return []byte("/* From the EHR's smart_style_url, checked value by value; colours keep WCAG AA contrast. */\n:root {\n" + strings.Join(decls, "\n") + "\n}\n")
}

// Allowed reports whether styleURL may be fetched for a launch from iss: only
// from the issuer's own origin (scheme, host and port), so a launch cannot
// make the server request an arbitrary address.
func Allowed(styleURL, iss string) bool {
	su, err := url.Parse(styleURL)
	if err != nil || su.User != nil || su.Host == "" {
		return false
	}
	iu, err := url.Parse(iss)
	if err != nil || iu.Host == "" {
		return false
	}
	return strings.EqualFold(su.Scheme, iu.Scheme) && strings.EqualFold(su.Host, iu.Host) &&
		(su.Scheme == "https" || su.Scheme == "http")
}
