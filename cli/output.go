package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"unicode"
)

// shapeOutput arranges a decoded response as botocore parses it, which is
// what the aws CLI prints: a structure's members in the model's order,
// members outside the model and null values left out, maps in the order
// the server sent them, timestamps as the server wrote them.
func shapeOutput(s *shape, v any) any {
	if v == nil || s == nil {
		return v
	}
	switch s.Type {
	case "structure":
		in, ok := v.(*object)
		if !ok {
			return v
		}
		out := newObject()
		for _, m := range s.Members {
			if x, ok := in.get(m.Name); ok && x != nil {
				out.set(m.Name, shapeOutput(shapeOf(m.Shape), x))
			}
		}
		return out
	case "list":
		in, ok := v.([]any)
		if !ok {
			return v
		}
		out := make([]any, 0, len(in))
		for _, e := range in {
			out = append(out, shapeOutput(shapeOf(s.Member), e))
		}
		return out
	case "map":
		in, ok := v.(*object)
		if !ok {
			return v
		}
		out := newObject()
		for _, k := range in.keys {
			out.set(k, shapeOutput(shapeOf(s.Value), in.vals[k]))
		}
		return out
	case "float", "double":
		// Floats are Python floats once botocore has parsed them: 30
		// prints as 30.0.
		if n, ok := v.(json.Number); ok {
			if f, err := parsePyFloat(n.String()); err == nil {
				return f
			}
		}
	}
	return v
}

// writeJSON prints a response as the aws CLI's json output does; an empty
// response prints nothing.
func writeJSON(w io.Writer, v any) error {
	if o, ok := v.(*object); ok && o.len() == 0 {
		return nil
	}
	var b bytes.Buffer
	writePythonJSON(&b, v, 0)
	b.WriteByte('\n')
	_, err := w.Write(b.Bytes())
	return err
}

// writeText prints a response as the aws CLI's text output does
// (awscli/text.py): one line per structure with its scalar values,
// tab-separated, in key order, prefixed by the upper-cased name of the
// list or member it is in; nested values on lines of their own.
func writeText(w io.Writer, v any) error {
	var b bytes.Buffer
	formatText(&b, v, "", nil)
	_, err := w.Write(b.Bytes())
	return err
}

func formatText(b *bytes.Buffer, v any, identifier string, scalarKeys []string) {
	switch v := v.(type) {
	case *object:
		formatTextDict(b, v, identifier, scalarKeys)
	case []any:
		formatTextList(b, v, identifier)
	default:
		b.WriteString(pyStr(v))
		b.WriteByte('\n')
	}
}

func formatTextList(b *bytes.Buffer, list []any, identifier string) {
	if len(list) == 0 {
		return
	}
	var hasDict, hasList bool
	for _, e := range list {
		switch e.(type) {
		case *object:
			hasDict = true
		case []any:
			hasList = true
		}
	}
	switch {
	case hasDict:
		keys := map[string]bool{}
		for _, e := range list {
			if o, ok := e.(*object); ok {
				for _, k := range o.keys {
					if isScalar(o.vals[k]) {
						keys[k] = true
					}
				}
			}
		}
		all := sortedKeys(keys)
		for _, e := range list {
			formatText(b, e, identifier, all)
		}
	case hasList:
		var scalars, others []any
		for _, e := range list {
			if isScalar(e) {
				scalars = append(scalars, e)
			} else {
				others = append(others, e)
			}
		}
		if len(scalars) > 0 {
			formatTextScalars(b, scalars, identifier)
		}
		for _, e := range others {
			formatText(b, e, identifier, nil)
		}
	default:
		formatTextScalars(b, list, identifier)
	}
}

func formatTextScalars(b *bytes.Buffer, list []any, identifier string) {
	if identifier != "" {
		for _, e := range list {
			fmt.Fprintf(b, "%s\t%s\n", strings.ToUpper(identifier), pyStr(e))
		}
		return
	}
	var parts []string
	for _, e := range list {
		parts = append(parts, pyStr(e))
	}
	b.WriteString(strings.Join(parts, "\t"))
	b.WriteByte('\n')
}

func formatTextDict(b *bytes.Buffer, o *object, identifier string, scalarKeys []string) {
	var scalars []string
	type pair struct {
		key string
		val any
	}
	var others []pair
	if scalarKeys == nil {
		keys := append([]string(nil), o.keys...)
		sort.Strings(keys)
		for _, k := range keys {
			if isScalar(o.vals[k]) {
				scalars = append(scalars, pyStr(o.vals[k]))
			} else {
				others = append(others, pair{k, o.vals[k]})
			}
		}
	} else {
		in := map[string]bool{}
		for _, k := range scalarKeys {
			in[k] = true
			if x, ok := o.get(k); ok {
				scalars = append(scalars, pyStr(x))
			} else {
				scalars = append(scalars, "")
			}
		}
		keys := append([]string(nil), o.keys...)
		sort.Strings(keys)
		for _, k := range keys {
			if !in[k] {
				others = append(others, pair{k, o.vals[k]})
			}
		}
	}
	if len(scalars) > 0 {
		if identifier != "" {
			scalars = append([]string{strings.ToUpper(identifier)}, scalars...)
		}
		b.WriteString(strings.Join(scalars, "\t"))
		b.WriteByte('\n')
	}
	for _, p := range others {
		formatText(b, p.val, p.key, nil)
	}
}

// Table output: the aws CLI's TableFormatter and MultiTable
// (awscli/formatter.py, awscli/table.py), box for box.

type tableSection struct {
	title     string
	headers   []string
	rows      [][]string
	indent    int
	numCols   int
	maxWidths []int
}

func (s *tableSection) updateWidths(row []string) {
	if len(s.maxWidths) == 0 {
		for _, e := range row {
			s.maxWidths = append(s.maxWidths, textLength(e))
		}
		return
	}
	for i, e := range row {
		if i < len(s.maxWidths) {
			s.maxWidths[i] = max(s.maxWidths[i], textLength(e))
		}
	}
}

func (s *tableSection) addHeader(h []string) {
	s.updateWidths(h)
	if s.numCols == 0 {
		s.numCols = len(h)
	}
	s.headers = h
}

func (s *tableSection) addRow(row []string) {
	if s.numCols == 0 {
		s.numCols = len(row)
	}
	s.rows = append(s.rows, row)
	s.updateWidths(row)
}

// columnWidths scales the widest cells plus padding to maxWidth (0: no
// scaling), rounding as Python does (half to even).
func (s *tableSection) columnWidths(padding, maxWidth int) []int {
	var widths []int
	sum := 0
	for _, w := range s.maxWidths {
		widths = append(widths, w+padding)
		sum += w + padding
	}
	if maxWidth == 0 || len(widths) == 0 {
		return widths
	}
	scale := float64(maxWidth) / float64(sum)
	scaled := make([]int, len(widths))
	total := 0
	for i, w := range widths {
		scaled[i] = int(math.RoundToEven(scale * float64(w)))
		total += scaled[i]
	}
	off := total - maxWidth
	for off != 0 {
		if off > 0 {
			for i := 0; i < len(scaled) && off != 0; i++ {
				scaled[i]--
				off--
			}
		} else {
			for i := len(scaled) - 1; i >= 0 && off != 0; i-- {
				scaled[i]++
				off++
			}
		}
	}
	return scaled
}

func (s *tableSection) totalWidth(padding int, outer int) int {
	total := 0
	for _, w := range s.columnWidths(0, 0) {
		total += w + padding
	}
	total += 2 + 2*outer
	return max(textLength(s.title)+2+2*outer, total)
}

// textLength counts East Asian wide characters twice, as the aws CLI does.
func textLength(s string) int {
	n := 0
	for _, r := range s {
		if unicode.Is(unicode.Han, r) || unicode.Is(unicode.Hangul, r) || unicode.Is(unicode.Hiragana, r) ||
			unicode.Is(unicode.Katakana, r) || r >= 0xFF01 && r <= 0xFF60 || r >= 0xFFE0 && r <= 0xFFE6 {
			n += 2
		} else {
			n++
		}
	}
	return n
}

type table struct {
	sections []*tableSection
	current  *tableSection
	width    int // of the terminal
	color    bool
}

func (t *table) newSection(title string, indent int) {
	t.current = &tableSection{title: title, indent: indent}
	t.sections = append(t.sections, t.current)
}

// build adds a response to the table as TableFormatter._build_table does.
func (t *table) build(title string, v any, indent int) bool {
	switch x := v.(type) {
	case nil:
		return false
	case *object:
		if x.len() == 0 {
			return false
		}
	case []any:
		if len(x) == 0 {
			return false
		}
	case string:
		if x == "" {
			return false
		}
	case bool:
		if !x {
			return false
		}
	case json.Number:
		if x == "0" {
			return false
		}
	case pyFloat:
		if x == 0 {
			return false
		}
	}
	if title != "" {
		t.newSection(title, indent)
	}
	switch x := v.(type) {
	case []any:
		if _, ok := x[0].(*object); ok {
			t.buildFromList(x, indent, title)
		} else {
			for _, item := range x {
				if isScalar(item) {
					t.current.addRow([]string{pyStr(item)})
				} else if l, ok := item.([]any); ok && allScalar(l) {
					var row []string
					for _, e := range l {
						row = append(row, pyStr(e))
					}
					t.current.addRow(row)
				} else {
					t.build("", item, 0)
				}
			}
		}
	case *object:
		t.buildFromDict(x, indent)
	}
	return true
}

func allScalar(l []any) bool {
	for _, e := range l {
		if !isScalar(e) {
			return false
		}
	}
	return true
}

func groupScalarKeys(o *object) (headers, more []string) {
	for _, k := range o.keys {
		if isScalar(o.vals[k]) {
			headers = append(headers, k)
		} else {
			more = append(more, k)
		}
	}
	sort.Strings(headers)
	sort.Strings(more)
	return headers, more
}

func (t *table) buildFromDict(o *object, indent int) {
	headers, more := groupScalarKeys(o)
	if len(headers) == 1 {
		t.current.addRow([]string{headers[0], pyStr(o.vals[headers[0]])})
	} else if len(headers) > 0 {
		t.current.addHeader(headers)
		var row []string
		for _, h := range headers {
			row = append(row, pyStr(o.vals[h]))
		}
		t.current.addRow(row)
	}
	for _, k := range more {
		t.build(k, o.vals[k], indent+1)
	}
}

func (t *table) buildFromList(list []any, indent int, title string) {
	hs, ms := map[string]bool{}, map[string]bool{}
	for _, e := range list {
		o, ok := e.(*object)
		if !ok {
			continue
		}
		h, m := groupScalarKeys(o)
		for _, k := range h {
			hs[k] = true
		}
		for _, k := range m {
			ms[k] = true
		}
	}
	headers, more := sortedKeys(hs), sortedKeys(ms)
	t.current.addHeader(headers)
	for i, e := range list {
		o, _ := e.(*object)
		if o == nil {
			o = newObject()
		}
		if i > 0 && len(more) > 0 {
			t.newSection(title, indent)
			t.current.addHeader(headers)
		}
		var row []string
		for _, h := range headers {
			if x, ok := o.get(h); ok {
				row = append(row, pyStr(x))
			} else {
				row = append(row, "")
			}
		}
		t.current.addRow(row)
		for _, k := range more {
			if x, ok := o.get(k); ok {
				t.build(k, x, indent+1)
			}
		}
	}
}

func (t *table) maxWidth() int {
	w := 0
	for _, s := range t.sections {
		w = max(w, s.totalWidth(4, s.indent))
	}
	return w
}

func (t *table) render(w io.Writer) error {
	if len(t.sections) == 0 {
		return nil
	}
	maxWidth := t.maxWidth()
	if maxWidth > t.width {
		// Too wide for the terminal: sections of one row become vertical
		// (a row per header and value).
		for i, s := range t.sections {
			if len(s.rows) == 1 && len(s.headers) > 0 {
				ns := &tableSection{title: s.title, indent: s.indent}
				for j, h := range s.headers {
					if j < len(s.rows[0]) {
						ns.addRow([]string{h, s.rows[0][j]})
					}
				}
				t.sections[i] = ns
			}
		}
		maxWidth = t.maxWidth()
	}
	var b bytes.Buffer
	b.WriteString(strings.Repeat("-", maxWidth) + "\n")
	for _, s := range t.sections {
		t.renderSection(&b, s, maxWidth)
	}
	_, err := w.Write(b.Bytes())
	return err
}

const (
	ansiReset  = "\x1b[0m"
	ansiRow    = "\x1b[1m\x1b[34m"
	ansiIndent = "\x1b[2m\x1b[33m"
)

func (t *table) indentChar() string {
	if t.color {
		return ansiIndent + "|" + ansiReset
	}
	return "|"
}

// line writes one line of a section indented n levels.
func (t *table) line(b *bytes.Buffer, indent int, text string) {
	edge := strings.Repeat(t.indentChar(), indent)
	b.WriteString(edge + text + edge + "\n")
}

func centerText(text string, length int, left, right string, textLen int) string {
	// As Python computes it, a negative start included.
	start := length/2 - textLen/2 - 1
	soFar := len(left) + start + textLen
	rightSpaces := length - len(right) - soFar
	return left + strings.Repeat(" ", max(start, 0)) + text + strings.Repeat(" ", max(rightSpaces, 0)) + right
}

func alignLeft(text string, length int, left, right string, textLen int) string {
	padding := 2
	if length-(textLen+2+len(left)+len(right)) < 0 {
		padding = 0
	}
	soFar := len(left) + padding + textLen
	fill := length - soFar - len(right)
	if fill < 0 {
		fill = 0
	}
	return left + strings.Repeat(" ", padding) + text + strings.Repeat(" ", fill) + right
}

func lineBreak(widths []int) string {
	var b strings.Builder
	for i, w := range widths {
		if i == 0 {
			b.WriteString("+" + strings.Repeat("-", max(w-2, 0)) + "+")
		} else {
			b.WriteString(strings.Repeat("-", max(w-1, 0)) + "+")
		}
	}
	return b.String()
}

func (t *table) renderSection(b *bytes.Buffer, s *tableSection, maxWidth int) {
	maxWidth -= s.indent * 2
	if s.title != "" {
		t.line(b, s.indent, centerText(s.title, maxWidth, "|", "|", textLength(s.title)))
		if len(s.headers) == 0 && len(s.rows) == 0 {
			t.line(b, s.indent, "+"+strings.Repeat("-", maxWidth-2)+"+")
		}
	}
	if len(s.headers) > 0 {
		widths := s.columnWidths(4, maxWidth)
		var cur strings.Builder
		for i, h := range s.headers {
			left := ""
			if i == 0 {
				left = "|"
			}
			if i < len(widths) {
				cur.WriteString(centerText(h, widths[i], left, "|", textLength(h)))
			}
		}
		t.line(b, s.indent, lineBreak(widths))
		t.line(b, s.indent, cur.String())
	}
	if len(s.rows) > 0 {
		widths := s.columnWidths(4, maxWidth)
		if len(widths) == 0 {
			return
		}
		t.line(b, s.indent, lineBreak(widths))
		for _, row := range s.rows {
			var cur strings.Builder
			for i, e := range row {
				if i >= len(widths) {
					break
				}
				left := ""
				if i == 0 {
					left = "|"
				}
				text := e
				if t.color {
					text = ansiRow + e + ansiReset
				}
				cur.WriteString(alignLeft(text, widths[i], left, "|", textLength(e)))
			}
			t.line(b, s.indent, cur.String())
		}
		t.line(b, s.indent, lineBreak(widths))
	}
}

// writeTable prints a response as the aws CLI's table output does, with
// the operation's name as the title, for a terminal width columns wide.
func writeTable(w io.Writer, title string, v any, width int, color bool) error {
	t := &table{width: width, color: color}
	if !t.build(title, v, 0) {
		return nil
	}
	return t.render(w)
}
