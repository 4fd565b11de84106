package server

import (
	"bytes"
	"context"
	"hash/fnv"

	"github.com/a-h/templ"

	"smartlabs/components/labs"
	"smartlabs/server/labscache"
)

// Updates of a view while its results arrive send only what changed: the
// view is rendered in parts, each part is remembered by a hash of its HTML,
// and an update carries the parts whose hash changed as htmx out-of-band
// swaps. The summary's tables and lines and All results' rows have stable
// element ids; a line that is new, or that moved (a new test sorts before
// it, its panel changed, it became critical), is deleted where it was and
// inserted after the line that now comes before it.

// Ids of the view's single parts (see labs.Results).
const (
	partCount  = "labs-count"
	partNotes  = "labs-notes"
	partBanner = "labs-banner"
	partPager  = "labs-pager"
	partBody   = "labs-body"
)

// singleParts are the parts replaced whole when they change, in the order an update sends them.
var singleParts = []string{partCount, partNotes, partBanner, partPager}

// Kinds of body: a summary and All results are updated line by line; any
// other body (empty, a flowsheet, a drill-down) is sent whole when it changes.
const (
	bodySummary = "summary"
	bodyList    = "list"
	bodyWhole   = ""
)

// liveState is what a browser shows of a view, part by part, as hashes.
// The launch's cache entry keeps it, by itself (see liveView.keep).
type liveState struct {
	parts  map[string]uint64
	kind   string
	tables []tableState
}

// tableState is one table of lines: a summary table, or All results' rows.
type tableState struct {
	id      string
	caption uint64
	lines   []lineState
}

type lineState struct {
	id   string
	hash uint64
	// rest is the hash of the line without its count (a summary line), so
	// that an update can tell a line whose count alone changed; 0 otherwise.
	rest uint64
}

// liveView is one rendering of a view, in parts, and its state.
type liveView struct {
	props  labs.Props
	parts  map[string][]byte
	tables []liveTable
	state  liveState
}

// liveTable is the rendering of one table: its caption and lines.
type liveTable struct {
	st      labs.SummaryTable // the summary table it is; zero for All results
	bodyID  string            // the element the lines are in
	caption []byte
	lines   [][]byte
	counts  [][]byte // each summary line's count, as rendered; nil for All results
}

// keep stores v's state in e under key, for the next update to start from.
// It stores a copy: a pointer to v.state would keep the whole of v (every
// part and line as rendered, and the view's props) with the results.
func (v *liveView) keep(e *labscache.Entry, key string) {
	st := v.state
	e.SetLive(key, &st)
}

// renderPart renders c into a new slice.
func renderPart(ctx context.Context, c templ.Component) ([]byte, error) {
	var b bytes.Buffer
	if err := c.Render(ctx, &b); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func hashOf(b []byte) uint64 {
	h := fnv.New64a()
	h.Write(b)
	return h.Sum64()
}

// hashWithout is the hash of b with the first occurrence of part left
// out, 0 when b does not hold part.
func hashWithout(b, part []byte) uint64 {
	i := bytes.Index(b, part)
	if i < 0 || len(part) == 0 {
		return 0
	}
	h := fnv.New64a()
	h.Write(b[:i])
	h.Write([]byte{0})
	h.Write(b[i+len(part):])
	return h.Sum64()
}

// renderLive renders the view p in parts.
func renderLive(ctx context.Context, p labs.Props) (*liveView, error) {
	v := &liveView{props: p, parts: map[string][]byte{}, state: liveState{parts: map[string]uint64{}}}
	add := func(id string, c templ.Component) error {
		b, err := renderPart(ctx, c)
		if err != nil {
			return err
		}
		v.parts[id], v.state.parts[id] = b, hashOf(b)
		return nil
	}
	if err := add(partCount, labs.CountLine(p)); err != nil {
		return nil, err
	}
	if err := add(partNotes, labs.Notes(p)); err != nil {
		return nil, err
	}
	if p.Banner != nil {
		if err := add(partBanner, labs.BannerUpdate(p)); err != nil {
			return nil, err
		}
	}
	switch {
	case p.Mode == labs.ModeSummary && p.Summary != nil && (len(p.Summary.Pinned) > 0 || len(p.Summary.Groups) > 0):
		v.state.kind = bodySummary
		for _, st := range labs.SummaryTables(p.Summary) {
			cap, err := renderPart(ctx, labs.SummaryCaption(st))
			if err != nil {
				return nil, err
			}
			t := liveTable{st: st, bodyID: st.ID + "-body", caption: cap}
			ts := tableState{id: st.ID, caption: hashOf(cap)}
			for _, a := range st.Lines {
				b, err := renderPart(ctx, labs.SummaryLine(a))
				if err != nil {
					return nil, err
				}
				n, err := renderPart(ctx, labs.AnalyteCount(a))
				if err != nil {
					return nil, err
				}
				t.lines, t.counts = append(t.lines, b), append(t.counts, n)
				ts.lines = append(ts.lines, lineState{id: labs.LineID(a.Key), hash: hashOf(b), rest: hashWithout(b, n)})
			}
			v.tables, v.state.tables = append(v.tables, t), append(v.state.tables, ts)
		}
	case p.Mode == labs.ModeList && len(p.Rows) > 0:
		v.state.kind = bodyList
		if err := add(partPager, labs.ListPagerPart(p)); err != nil {
			return nil, err
		}
		t := liveTable{bodyID: labs.RowsID}
		ts := tableState{id: labs.RowsID}
		for _, r := range p.Rows {
			b, err := renderPart(ctx, labs.ResultRow(r))
			if err != nil {
				return nil, err
			}
			t.lines = append(t.lines, b)
			ts.lines = append(ts.lines, lineState{id: labs.RowID(r.ID), hash: hashOf(b)})
		}
		v.tables, v.state.tables = []liveTable{t}, []tableState{ts}
	default:
		if err := add(partBody, labs.Body(p)); err != nil {
			return nil, err
		}
	}
	return v, nil
}

// oob marks the first element of html as an htmx out-of-band swap with
// value (an attribute inserted after the tag name: html is our own markup,
// which always starts with an element).
func oob(html []byte, value string) []byte {
	i := 1
	for i < len(html) && html[i] != ' ' && html[i] != '>' {
		i++
	}
	out := make([]byte, 0, len(html)+len(value)+16)
	out = append(out, html[:i]...)
	out = append(out, ` hx-swap-oob="`...)
	out = append(out, value...)
	out = append(out, '"')
	return append(out, html[i:]...)
}

// fullBodyAbove is the size of an update past which the whole body is
// rendered as well, and sent instead when it is smaller.
const fullBodyAbove = 16 << 10

// update is what the browser needs to go from old (nil: it shows nothing
// of this view yet, or something unknown) to v: htmx out-of-band swaps of
// the parts that changed, empty when nothing did.
func (v *liveView) update(ctx context.Context, old *liveState) ([]byte, error) {
	var out bytes.Buffer
	for _, id := range singleParts {
		b, ok := v.parts[id]
		if !ok || old != nil && old.parts[id] == v.state.parts[id] {
			continue
		}
		if id == partBanner {
			out.Write(b) // already marked for its slot
			continue
		}
		out.Write(oob(b, "true"))
	}
	whole := old == nil || old.kind != v.state.kind ||
		v.state.kind == bodyWhole && old.parts[partBody] != v.state.parts[partBody]
	// body is the whole body once rendered: a body updated line by line is
	// rendered whole only when it is needed, and then only once.
	body, rendered := v.parts[partBody]
	if !whole && v.state.kind != bodyWhole {
		lines := v.lineUpdates(old)
		if len(lines) > fullBodyAbove {
			var err error
			if body, err = renderPart(ctx, labs.Body(v.props)); err != nil {
				return nil, err
			}
			rendered = true
			whole = len(body) < len(lines)
		}
		if !whole {
			out.Write(lines)
		}
	}
	if whole {
		if !rendered {
			var err error
			if body, err = renderPart(ctx, labs.Body(v.props)); err != nil {
				return nil, err
			}
		}
		out.Write(oob(body, "true"))
	}
	return out.Bytes(), nil
}

// lineUpdates are the swaps that turn old's tables into v's: old and v
// show the same kind of body. Deletions come first, as top-level elements,
// which htmx swaps before the templates that follow (each template holds
// one table part, parsed in a table's context), in document order.
func (v *liveView) lineUpdates(old *liveState) []byte {
	var del, ins bytes.Buffer
	oldTables := map[string]*tableState{}
	for i := range old.tables {
		oldTables[old.tables[i].id] = &old.tables[i]
	}
	keptTables := common(idsOf(old.tables, func(t tableState) string { return t.id }), idsOf(v.state.tables, func(t tableState) string { return t.id }))
	for _, t := range old.tables {
		if !keptTables[t.id] {
			writeDelete(&del, t.id)
		}
	}
	for i, nt := range v.state.tables {
		lt := v.tables[i]
		if !keptTables[nt.id] {
			where := "afterbegin:#labs-summary"
			if i > 0 {
				where = "afterend:#" + v.state.tables[i-1].id
			}
			ins.WriteString(`<template><div hx-swap-oob="` + where + `">`)
			_ = labs.SummaryTableView(lt.st).Render(context.Background(), &ins)
			ins.WriteString(`</div></template>`)
			continue
		}
		ot := oldTables[nt.id]
		if lt.caption != nil && ot.caption != nt.caption {
			ins.WriteString("<template>")
			ins.Write(oob(lt.caption, "true"))
			ins.WriteString("</template>")
		}
		oldLines := map[string]lineState{}
		for _, l := range ot.lines {
			oldLines[l.id] = l
		}
		kept := common(idsOf(ot.lines, func(l lineState) string { return l.id }), idsOf(nt.lines, func(l lineState) string { return l.id }))
		for _, l := range ot.lines {
			if !kept[l.id] {
				writeDelete(&del, l.id)
			}
		}
		for j, l := range nt.lines {
			switch {
			case !kept[l.id]:
				where := "afterbegin:#" + lt.bodyID
				if j > 0 {
					where = "afterend:#" + nt.lines[j-1].id
				}
				ins.WriteString(`<template><tbody hx-swap-oob="` + where + `">`)
				ins.Write(lt.lines[j])
				ins.WriteString("</tbody></template>")
			case oldLines[l.id].hash == l.hash:
			case lt.counts != nil && l.rest != 0 && oldLines[l.id].rest == l.rest:
				// Only the count changed: swap the count alone.
				ins.Write(oob(lt.counts[j], "true"))
			default:
				ins.WriteString("<template>")
				ins.Write(oob(lt.lines[j], "true"))
				ins.WriteString("</template>")
			}
		}
	}
	if ins.Len() == 0 && del.Len() == 0 {
		return nil
	}
	return append(del.Bytes(), ins.Bytes()...)
}

// writeDelete writes the swap that removes the element with id.
func writeDelete(b *bytes.Buffer, id string) {
	b.WriteString(`<div id="` + id + `" hx-swap-oob="delete"></div>`)
}

func idsOf[T any](xs []T, id func(T) string) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = id(x)
	}
	return out
}

// maxLCSCells bounds the work of common; beyond it only the common prefix
// and suffix are kept (the rest is sent again).
const maxLCSCells = 1 << 18

// common returns the ids of a longest common subsequence of a and b: the
// elements that stay where they are, in the same order. Ids are unique
// within a and within b.
func common(a, b []string) map[string]bool {
	keep := map[string]bool{}
	p := 0
	for p < len(a) && p < len(b) && a[p] == b[p] {
		keep[a[p]] = true
		p++
	}
	s := 0
	for s < len(a)-p && s < len(b)-p && a[len(a)-1-s] == b[len(b)-1-s] {
		keep[a[len(a)-1-s]] = true
		s++
	}
	a, b = a[p:len(a)-s], b[p:len(b)-s]
	n, m := len(a), len(b)
	if n == 0 || m == 0 || n*m > maxLCSCells {
		return keep
	}
	// l[i][j] is the LCS length of a[i:] and b[j:].
	l := make([][]int32, n+1)
	for i := range l {
		l[i] = make([]int32, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if a[i] == b[j] {
				l[i][j] = l[i+1][j+1] + 1
			} else {
				l[i][j] = max(l[i+1][j], l[i][j+1])
			}
		}
	}
	for i, j := 0, 0; i < n && j < m; {
		switch {
		case a[i] == b[j]:
			keep[a[i]] = true
			i++
			j++
		case l[i+1][j] >= l[i][j+1]:
			i++
		default:
			j++
		}
	}
	return keep
}
