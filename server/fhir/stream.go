package fhir

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
)

// errFallback means the streaming decoder met something it does not handle
// exactly like the reflection decoder (a null, an escaped name, a wrong type,
// bad JSON); the page is then decoded again by decodeBundleReflect, which
// gives the reference behaviour and error.
var errFallback = errors.New("fhir: stream decoder fallback")

// maxPageHint bounds the capacity one page's count can reserve for the next.
const maxPageHint = 1000

// maxInterned bounds the per-page table of repeated strings.
const maxInterned = 4096

// streamDecoder scans a searchset Bundle's bytes once, without reflection,
// into the wire structs, for exactly the fields the app uses; unknown members
// are checked and skipped. It is as strict as JSON v2 (exact grammar,
// duplicate names and invalid UTF-8 refused: a second "subject" cannot hide
// behind the first) and hands anything unusual to the reflection decoder.
type streamDecoder struct {
	buf     []byte
	pos     int
	depth   int
	names   [][]byte
	scratch []byte
	// strs interns repeated strings (systems, units, codes, the subject) so
	// that one page allocates each once; every string is a copy, never a view
	// of the body.
	strs map[string]string
	w    wireResource
	// lastCount is the number of Observations on the last page decoded.
	lastCount int
	// The arenas below hold the current entry's nested values; they are
	// emptied for each entry, once toObservation has copied the previous one.
	// A slice handed out stays valid when an arena grows (it keeps the old
	// array), and is only overwritten after its entry is converted.
	acodings    []wireCoding
	aquantities []wireQuantity
	aconcepts   []wireConcept
	aranges     []wireRange
	arefs       []wireReference
}

// streamPool reuses decoders (and their buffers) across pages.
var streamPool = sync.Pool{New: func() any {
	return &streamDecoder{strs: make(map[string]string, 256)}
}}

// reset empties the arenas for the next entry.
func (d *streamDecoder) reset() {
	d.w = wireResource{}
	d.acodings = d.acodings[:0]
	d.aquantities = d.aquantities[:0]
	d.aconcepts = d.aconcepts[:0]
	d.aranges = d.aranges[:0]
	d.arefs = d.arefs[:0]
}

// release drops every reference to the body and to patient data, so that
// nothing of a page stays reachable from the pool.
func (d *streamDecoder) release() {
	d.buf = nil
	clear(d.names[:cap(d.names)])
	d.names = d.names[:0]
	clear(d.strs)
	clear(d.scratch[:cap(d.scratch)])
	d.reset()
	clear(d.acodings[:cap(d.acodings)])
	clear(d.aquantities[:cap(d.aquantities)])
	clear(d.aconcepts[:cap(d.aconcepts)])
	clear(d.aranges[:cap(d.aranges)])
	clear(d.arefs[:cap(d.arefs)])
}

// newQuantity returns a zero quantity from the arena.
func (d *streamDecoder) newQuantity() *wireQuantity {
	d.aquantities = append(d.aquantities, wireQuantity{})
	return &d.aquantities[len(d.aquantities)-1]
}

// decodeBundleStream decodes body like decodeBundleReflect, or returns
// errFallback when the page must be decoded by decodeBundleReflect instead.
func decodeBundleStream(body []byte, patientID string) (*page, error) {
	d := streamPool.Get().(*streamDecoder)
	d.buf, d.pos, d.depth = body, 0, 0
	defer func() {
		d.release()
		streamPool.Put(d)
	}()
	p := &page{total: -1}
	// Pages of one search are alike: the last page's count sizes this one.
	p.observations = make([]Observation, 0, d.lastCount)
	p.times = make([]entryTimes, 0, d.lastCount)
	entries := make([]int, 0, d.lastCount)
	sawType := false
	err := d.object(func(name []byte) error {
		switch string(name) {
		case "resourceType":
			s, err := d.str()
			if err != nil {
				return err
			}
			if s != "Bundle" {
				return errFallback
			}
			sawType = true
		case "total":
			n, err := d.total()
			if err != nil {
				return err
			}
			p.total = n
		case "link":
			return d.array(func() error {
				var l wireLink
				err := d.object(func(name []byte) error {
					switch string(name) {
					case "relation":
						return d.strInto(&l.Relation)
					case "url":
						return d.strInto(&l.URL)
					}
					return d.skip()
				})
				if err == nil && l.Relation == "next" {
					p.next = l.URL
				}
				return err
			})
		case "entry":
			i := 0
			return d.array(func() error {
				entry := i
				i++
				return d.object(func(name []byte) error {
					if string(name) != "resource" {
						return d.skip()
					}
					d.reset()
					if err := d.resource(&d.w); err != nil {
						return err
					}
					switch d.w.ResourceType {
					case "Observation":
						p.observations = append(p.observations, toObservation(&d.w.wireObservation))
						p.times = append(p.times, timesOf(&d.w.wireObservation))
						entries = append(entries, entry)
					case "OperationOutcome":
						p.outcomes = append(p.outcomes, toOutcomes(&wireOperationOutcome{ResourceType: d.w.ResourceType, Issue: d.w.Issue})...)
					}
					return nil
				})
			})
		default:
			return d.skip()
		}
		return nil
	})
	if err != nil {
		return nil, errFallback
	}
	// One document only, as json.Unmarshal requires.
	if d.peek(); d.pos != len(d.buf) {
		return nil, errFallback
	}
	if !sawType {
		return nil, errFallback
	}
	kept, keptTimes := p.observations[:0], p.times[:0]
	for k := range p.observations {
		o := &p.observations[k]
		// Every Observation must be about the launch's patient; one that is not
		// means the server is confused, and nothing from it can be trusted.
		if !isPatientRef(o.Subject, patientID) {
			return nil, newError(KindWrongPatient, http.StatusOK, fmt.Errorf("entry %d: subject is not the launch patient", entries[k]))
		}
		if o.Status != "entered-in-error" {
			kept = append(kept, *o)
			keptTimes = append(keptTimes, p.times[k])
		}
	}
	d.lastCount = min(len(p.observations), maxPageHint)
	clear(p.observations[len(kept):])
	p.observations, p.times = kept, keptTimes
	return p, nil
}

// maxNames and maxDepth bound what the scanner handles itself; a larger
// object or a deeper document is left to the reflection decoder.
const (
	maxNames = 64
	maxDepth = 256
)

// ws skips JSON whitespace.
func (d *streamDecoder) ws() {
	for d.pos < len(d.buf) {
		switch d.buf[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}

// peek skips whitespace and returns the next byte, 0 at the end.
func (d *streamDecoder) peek() byte {
	d.ws()
	if d.pos < len(d.buf) {
		return d.buf[d.pos]
	}
	return 0
}

// object reads one JSON object, calling member for each name; member must
// read the name's value. A null or any other kind gives errFallback. Names
// are compared raw (escaped names fall back), so a duplicate is found as
// JSON v2 finds it.
func (d *streamDecoder) object(member func(name []byte) error) error {
	if d.peek() != '{' {
		return errFallback
	}
	d.pos++
	d.depth++
	if d.depth > maxDepth {
		return errFallback
	}
	base := len(d.names)
	defer func() { d.names = d.names[:base] }()
	if d.peek() == '}' {
		d.pos++
		d.depth--
		return nil
	}
	for {
		if d.peek() != '"' {
			return errFallback
		}
		name, escaped, err := d.scanString()
		if err != nil {
			return err
		}
		if escaped || len(d.names)-base >= maxNames {
			return errFallback
		}
		for _, n := range d.names[base:] {
			if bytes.Equal(n, name) {
				return errFallback
			}
		}
		d.names = append(d.names, name)
		if d.peek() != ':' {
			return errFallback
		}
		d.pos++
		if err := member(name); err != nil {
			return err
		}
		switch d.peek() {
		case ',':
			d.pos++
		case '}':
			d.pos++
			d.depth--
			return nil
		default:
			return errFallback
		}
	}
}

// array reads one JSON array, calling elem for each element; elem must read it.
func (d *streamDecoder) array(elem func() error) error {
	if d.peek() != '[' {
		return errFallback
	}
	d.pos++
	d.depth++
	if d.depth > maxDepth {
		return errFallback
	}
	if d.peek() == ']' {
		d.pos++
		d.depth--
		return nil
	}
	for {
		if err := elem(); err != nil {
			return err
		}
		switch d.peek() {
		case ',':
			d.pos++
		case ']':
			d.pos++
			d.depth--
			return nil
		default:
			return errFallback
		}
	}
}

// scanString reads the string at d.pos (an opening quote) and returns its
// raw content, checked: no control characters, valid UTF-8. escaped reports
// a backslash, whose escapes are not yet checked.
func (d *streamDecoder) scanString() (raw []byte, escaped bool, err error) {
	start := d.pos + 1
	ascii := true
	for i := start; i < len(d.buf); i++ {
		c := d.buf[i]
		switch {
		case c == '"':
			raw = d.buf[start:i]
			d.pos = i + 1
			if !ascii && !utf8.Valid(raw) {
				return nil, false, errFallback
			}
			return raw, escaped, nil
		case c == '\\':
			escaped = true
			i++
		case c < 0x20:
			return nil, false, errFallback
		case c >= 0x80:
			ascii = false
		}
	}
	return nil, false, errFallback
}

// unquoted returns the text of a string read by scanString, its escapes
// decoded and checked.
func (d *streamDecoder) unquoted(raw []byte, escaped bool) ([]byte, error) {
	if !escaped {
		return raw, nil
	}
	// raw sits between two quotes in the body, so the quoted form is a slice too.
	quoted := d.buf[d.pos-len(raw)-2 : d.pos]
	out, err := jsontext.AppendUnquote(d.scratch[:0], quoted)
	if err != nil {
		return nil, errFallback
	}
	d.scratch = out
	return out, nil
}

// skip reads and checks any one JSON value.
func (d *streamDecoder) skip() error {
	switch c := d.peek(); c {
	case '{':
		return d.object(func([]byte) error { return d.skip() })
	case '[':
		return d.array(d.skip)
	case '"':
		raw, escaped, err := d.scanString()
		if err == nil {
			_, err = d.unquoted(raw, escaped)
		}
		return err
	case 't':
		return d.literal("true")
	case 'f':
		return d.literal("false")
	case 'n':
		return d.literal("null")
	default:
		_, err := d.scanNumber()
		return err
	}
}

// literal reads the literal lit.
func (d *streamDecoder) literal(lit string) error {
	if !bytes.HasPrefix(d.buf[d.pos:], []byte(lit)) {
		return errFallback
	}
	d.pos += len(lit)
	return nil
}

// scanNumber reads a JSON number and returns its text; the grammar is
// checked exactly: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (d *streamDecoder) scanNumber() ([]byte, error) {
	b, i := d.buf, d.pos
	digits := func() bool {
		j := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		return i > j
	}
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		digits()
	default:
		return nil, errFallback
	}
	if i < len(b) && b[i] == '.' {
		i++
		if !digits() {
			return nil, errFallback
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if !digits() {
			return nil, errFallback
		}
	}
	v := b[d.pos:i]
	d.pos = i
	return v, nil
}

// str reads a JSON string; a null or another kind gives errFallback.
func (d *streamDecoder) str() (string, error) {
	if d.peek() != '"' {
		return "", errFallback
	}
	raw, escaped, err := d.scanString()
	if err != nil {
		return "", err
	}
	if raw, err = d.unquoted(raw, escaped); err != nil {
		return "", err
	}
	if s, ok := d.strs[string(raw)]; ok {
		return s, nil
	}
	s := string(raw)
	if len(d.strs) < maxInterned {
		d.strs[s] = s
	}
	return s, nil
}

// strInto reads a JSON string into *dst.
func (d *streamDecoder) strInto(dst *string) error {
	s, err := d.str()
	*dst = s
	return err
}

// total reads Bundle.total: a plain non-negative integer; anything else is
// left to the reflection decoder.
func (d *streamDecoder) total() (int, error) {
	c := d.peek()
	if c < '0' || c > '9' {
		return 0, errFallback
	}
	v, err := d.scanNumber()
	if err != nil {
		return 0, err
	}
	if len(v) > 15 {
		return 0, errFallback
	}
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, errFallback
		}
	}
	n, err := strconv.Atoi(string(v))
	if err != nil {
		return 0, errFallback
	}
	return n, nil
}

// number reads a quantity's value, kept as sent.
func (d *streamDecoder) number(dst *wireNumber) error {
	if c := d.peek(); c != '-' && (c < '0' || c > '9') {
		return errFallback
	}
	v, err := d.scanNumber()
	if err != nil {
		return err
	}
	*dst = wireNumber(v)
	return nil
}

// resource reads an entry's resource into the union of the fields of the
// resource types a search returns.
func (d *streamDecoder) resource(w *wireResource) error {
	return d.object(func(name []byte) error {
		switch string(name) {
		case "resourceType":
			return d.strInto(&w.ResourceType)
		case "id":
			return d.strInto(&w.ID)
		case "status":
			return d.strInto(&w.Status)
		case "code":
			return d.concept(&w.Code)
		case "subject":
			return d.reference(&w.Subject)
		case "effectiveDateTime":
			return d.strInto(&w.EffectiveDateTime)
		case "effectiveInstant":
			return d.strInto(&w.EffectiveInstant)
		case "effectivePeriod":
			w.EffectivePeriod = &wirePeriod{}
			return d.object(func(name []byte) error {
				switch string(name) {
				case "start":
					return d.strInto(&w.EffectivePeriod.Start)
				case "end":
					return d.strInto(&w.EffectivePeriod.End)
				}
				return d.skip()
			})
		case "meta":
			w.Meta = &wireMeta{}
			return d.object(func(name []byte) error {
				if string(name) == "lastUpdated" {
					return d.strInto(&w.Meta.LastUpdated)
				}
				return d.skip()
			})
		case "issued":
			return d.strInto(&w.Issued)
		case "dataAbsentReason":
			w.DataAbsentReason = &wireConcept{}
			return d.concept(w.DataAbsentReason)
		case "referenceRange":
			return d.ranges(&w.ReferenceRange)
		case "interpretation":
			return d.concepts(&w.Interpretation)
		case "component":
			w.Component = make([]wireComponent, 0, 4)
			return d.array(func() error {
				w.Component = append(w.Component, wireComponent{})
				return d.component(&w.Component[len(w.Component)-1])
			})
		case "hasMember":
			return d.references(&w.HasMember)
		case "derivedFrom":
			return d.references(&w.DerivedFrom)
		case "basedOn":
			return d.references(&w.BasedOn)
		case "performer":
			return d.references(&w.Performer)
		case "specimen":
			w.Specimen = &wireReference{}
			return d.reference(w.Specimen)
		case "note":
			w.Note = make([]wireAnnotation, 0, 1)
			return d.array(func() error {
				w.Note = append(w.Note, wireAnnotation{})
				a := &w.Note[len(w.Note)-1]
				return d.object(func(name []byte) error {
					if string(name) == "text" {
						return d.strInto(&a.Text)
					}
					return d.skip()
				})
			})
		case "issue":
			w.Issue = make([]wireIssue, 0, 1)
			return d.array(func() error {
				w.Issue = append(w.Issue, wireIssue{})
				return d.issue(&w.Issue[len(w.Issue)-1])
			})
		}
		if ok, err := d.value(name, &w.wireValue); ok {
			return err
		}
		return d.skip()
	})
}

// value reads a value[x] member; ok is false when name is not one.
func (d *streamDecoder) value(name []byte, w *wireValue) (ok bool, err error) {
	switch string(name) {
	case "valueQuantity":
		w.ValueQuantity = d.newQuantity()
		return true, d.quantity(w.ValueQuantity)
	case "valueString":
		s, err := d.str()
		w.ValueString = &s
		return true, err
	case "valueCodeableConcept":
		w.ValueCodeableConcept = new(wireConcept)
		return true, d.concept(w.ValueCodeableConcept)
	}
	return false, nil
}

// component reads one Observation.component.
func (d *streamDecoder) component(w *wireComponent) error {
	return d.object(func(name []byte) error {
		switch string(name) {
		case "code":
			return d.concept(&w.Code)
		case "dataAbsentReason":
			w.DataAbsentReason = &wireConcept{}
			return d.concept(w.DataAbsentReason)
		case "referenceRange":
			return d.ranges(&w.ReferenceRange)
		case "interpretation":
			return d.concepts(&w.Interpretation)
		}
		if ok, err := d.value(name, &w.wireValue); ok {
			return err
		}
		return d.skip()
	})
}

// arenaArray reads a JSON array whose elements are appended to arena (one
// allocation shared by the page) and returns them as their own slice. The
// elements must not themselves append to the same arena, or they would not be
// contiguous.
func arenaArray[T any](d *streamDecoder, arena *[]T, read func(*T) error) ([]T, error) {
	start := len(*arena)
	err := d.array(func() error {
		var zero T
		*arena = append(*arena, zero)
		return read(&(*arena)[len(*arena)-1])
	})
	return (*arena)[start:len(*arena):len(*arena)], err
}

// concept reads a CodeableConcept.
func (d *streamDecoder) concept(w *wireConcept) error {
	return d.object(func(name []byte) error {
		switch string(name) {
		case "text":
			return d.strInto(&w.Text)
		case "coding":
			// Codings hold no codings, so this concept's codings are contiguous.
			var err error
			w.Coding, err = arenaArray(d, &d.acodings, func(c *wireCoding) error {
				return d.object(func(name []byte) error {
					switch string(name) {
					case "system":
						return d.strInto(&c.System)
					case "code":
						return d.strInto(&c.Code)
					case "display":
						return d.strInto(&c.Display)
					}
					return d.skip()
				})
			})
			return err
		}
		return d.skip()
	})
}

// concepts reads an array of CodeableConcepts.
func (d *streamDecoder) concepts(ws *[]wireConcept) error {
	// Concepts hold no concepts, so the array's elements are contiguous.
	var err error
	*ws, err = arenaArray(d, &d.aconcepts, d.concept)
	return err
}

// reference reads a Reference.
func (d *streamDecoder) reference(w *wireReference) error {
	return d.object(func(name []byte) error {
		switch string(name) {
		case "reference":
			return d.strInto(&w.Reference)
		case "display":
			return d.strInto(&w.Display)
		}
		return d.skip()
	})
}

// references reads an array of References.
func (d *streamDecoder) references(ws *[]wireReference) error {
	var err error
	*ws, err = arenaArray(d, &d.arefs, d.reference)
	return err
}

// quantity reads a Quantity.
func (d *streamDecoder) quantity(w *wireQuantity) error {
	return d.object(func(name []byte) error {
		switch string(name) {
		case "value":
			return d.number(&w.Value)
		case "comparator":
			return d.strInto(&w.Comparator)
		case "unit":
			return d.strInto(&w.Unit)
		case "code":
			return d.strInto(&w.Code)
		case "system":
			return d.strInto(&w.System)
		}
		return d.skip()
	})
}

// ranges reads an array of reference ranges.
func (d *streamDecoder) ranges(ws *[]wireRange) error {
	// Ranges hold no ranges, so the array's elements are contiguous.
	var err error
	*ws, err = arenaArray(d, &d.aranges, func(r *wireRange) error {
		return d.object(func(name []byte) error {
			switch string(name) {
			case "low":
				r.Low = d.newQuantity()
				return d.quantity(r.Low)
			case "high":
				r.High = d.newQuantity()
				return d.quantity(r.High)
			case "text":
				return d.strInto(&r.Text)
			case "type":
				r.Type = &wireConcept{}
				return d.concept(r.Type)
			case "appliesTo":
				// Ranges are never read inside a concept array, so these
				// concepts are contiguous in their own arena.
				return d.concepts(&r.AppliesTo)
			case "age":
				r.Age = &wireAgeRange{}
				return d.object(func(name []byte) error {
					switch string(name) {
					case "low":
						r.Age.Low = d.newQuantity()
						return d.quantity(r.Age.Low)
					case "high":
						r.Age.High = d.newQuantity()
						return d.quantity(r.Age.High)
					}
					return d.skip()
				})
			}
			return d.skip()
		})
	})
	return err
}

// issue reads one OperationOutcome.issue.
func (d *streamDecoder) issue(w *wireIssue) error {
	return d.object(func(name []byte) error {
		switch string(name) {
		case "severity":
			return d.strInto(&w.Severity)
		case "code":
			return d.strInto(&w.Code)
		case "details":
			return d.concept(&w.Details)
		}
		return d.skip()
	})
}
