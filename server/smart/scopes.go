package smart

import "strings"

// Grants reports whether the granted scope string (a token response's
// scope) lets the app read and search resource type res for the patient:
// SMART v1 patient/Res.read or patient/*.read, or SMART v2 patient/Res.rs,
// .r or .s (with or without a query after "?"). user/ scopes count too: they
// cover every patient the user may see, this one included.
func Grants(scope, res string) bool {
	for _, sc := range strings.Fields(scope) {
		rest, ok := strings.CutPrefix(sc, "patient/")
		if !ok {
			rest, ok = strings.CutPrefix(sc, "user/")
		}
		if !ok {
			continue
		}
		typ, perm, ok := strings.Cut(rest, ".")
		if !ok || typ != res && typ != "*" {
			continue
		}
		perm, _, _ = strings.Cut(perm, "?")
		if perm == "read" || perm == "*" || v2Reads(perm) {
			return true
		}
	}
	return false
}

// v2Reads reports whether perm is a SMART v2 permission string (letters of
// "cruds" in that order, each at most once) that includes read or search.
func v2Reads(perm string) bool {
	if perm == "" {
		return false
	}
	rest := "cruds"
	for _, c := range perm {
		i := strings.IndexRune(rest, c)
		if i < 0 {
			return false
		}
		rest = rest[i+1:]
	}
	return strings.ContainsAny(perm, "rs")
}
