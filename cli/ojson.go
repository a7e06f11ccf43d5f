package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Values handled by the CLI are those encoding/json decodes with UseNumber,
// except that objects keep the order of their keys: nil, bool, string,
// json.Number, []any and *object.

// object is a JSON object whose keys keep their order.
type object struct {
	keys []string
	vals map[string]any
}

func newObject() *object { return &object{vals: map[string]any{}} }

// set adds or replaces key, keeping the place of a key already there.
func (o *object) set(key string, v any) {
	if _, ok := o.vals[key]; !ok {
		o.keys = append(o.keys, key)
	}
	o.vals[key] = v
}

func (o *object) get(key string) (any, bool) {
	v, ok := o.vals[key]
	return v, ok
}

func (o *object) del(key string) {
	if _, ok := o.vals[key]; !ok {
		return
	}
	delete(o.vals, key)
	for i, k := range o.keys {
		if k == key {
			o.keys = append(o.keys[:i:i], o.keys[i+1:]...)
			break
		}
	}
}

func (o *object) len() int { return len(o.keys) }

// MarshalJSON writes the object compactly, keys in order, so that values
// can be handed to encoding/json (and so to the SDK's input types).
func (o *object) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, k := range o.keys {
		if i > 0 {
			b.WriteByte(',')
		}
		kb, _ := json.Marshal(k)
		b.Write(kb)
		b.WriteByte(':')
		vb, err := json.Marshal(o.vals[k])
		if err != nil {
			return nil, err
		}
		b.Write(vb)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// decodeJSON decodes one JSON value, keeping the order of object keys.
func decodeJSON(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	v, err := decodeValue(dec)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("extra data after the JSON value")
	}
	return v, nil
}

func decodeValue(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		if err == io.EOF {
			return nil, io.ErrUnexpectedEOF
		}
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			o := newObject()
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				k, _ := kt.(string)
				v, err := decodeValue(dec)
				if err != nil {
					return nil, err
				}
				o.set(k, v)
			}
			if _, err := dec.Token(); err != nil {
				return nil, err
			}
			return o, nil
		case '[':
			list := []any{}
			for dec.More() {
				v, err := decodeValue(dec)
				if err != nil {
					return nil, err
				}
				list = append(list, v)
			}
			if _, err := dec.Token(); err != nil {
				return nil, err
			}
			return list, nil
		}
		return nil, fmt.Errorf("unexpected %v", t)
	default:
		return t, nil
	}
}

// writePythonJSON writes v as Python's json.dump(v, indent=4,
// ensure_ascii=False) does, which is what the aws CLI prints.
func writePythonJSON(w *bytes.Buffer, v any, indent int) {
	pad := func(n int) { w.WriteString(strings.Repeat(" ", n)) }
	switch v := v.(type) {
	case nil:
		w.WriteString("null")
	case bool:
		if v {
			w.WriteString("true")
		} else {
			w.WriteString("false")
		}
	case string:
		writePythonString(w, v)
	case json.Number:
		w.WriteString(v.String())
	case pyFloat:
		w.WriteString(v.jsonText())
	case int:
		w.WriteString(strconv.Itoa(v))
	case int64:
		w.WriteString(strconv.FormatInt(v, 10))
	case []any:
		if len(v) == 0 {
			w.WriteString("[]")
			return
		}
		w.WriteString("[\n")
		for i, e := range v {
			if i > 0 {
				w.WriteString(",\n")
			}
			pad(indent + 4)
			writePythonJSON(w, e, indent+4)
		}
		w.WriteString("\n")
		pad(indent)
		w.WriteString("]")
	case *object:
		if v.len() == 0 {
			w.WriteString("{}")
			return
		}
		w.WriteString("{\n")
		for i, k := range v.keys {
			if i > 0 {
				w.WriteString(",\n")
			}
			pad(indent + 4)
			writePythonString(w, k)
			w.WriteString(": ")
			writePythonJSON(w, v.vals[k], indent+4)
		}
		w.WriteString("\n")
		pad(indent)
		w.WriteString("}")
	default:
		fmt.Fprintf(w, "%v", v)
	}
}

// writePythonString quotes s as Python's json module does with
// ensure_ascii=False: only the quote, the backslash and control characters
// are escaped.
func writePythonString(w *bytes.Buffer, s string) {
	w.WriteByte('"')
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == '"':
			w.WriteString(`\"`)
		case r == '\\':
			w.WriteString(`\\`)
		case r == '\n':
			w.WriteString(`\n`)
		case r == '\r':
			w.WriteString(`\r`)
		case r == '\t':
			w.WriteString(`\t`)
		case r == '\b':
			w.WriteString(`\b`)
		case r == '\f':
			w.WriteString(`\f`)
		case r < 0x20:
			fmt.Fprintf(w, `\u%04x`, r)
		default:
			w.WriteString(s[i : i+size])
		}
		i += size
	}
	w.WriteByte('"')
}

// pyStr is Python's str() of a scalar, as the text and table outputs
// print them.
func pyStr(v any) string {
	switch v := v.(type) {
	case nil:
		return "None"
	case bool:
		if v {
			return "True"
		}
		return "False"
	case string:
		return v
	case json.Number:
		return v.String()
	case pyFloat:
		return v.String()
	}
	return fmt.Sprint(v)
}

// pyFloat is a number of a float or double member as botocore parses it,
// a Python float, which prints as Python prints one: 30.0, 29.97, 1e-05.
type pyFloat float64

// parsePyFloat reads s as Python's float() does for the decimal numbers
// JSON and the command line give.
func parsePyFloat(s string) (pyFloat, error) {
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) { // out of range is ±inf or 0, as in Python
		return 0, err
	}
	return pyFloat(f), nil
}

// String is Python's repr() of the float, which str() and json.dumps
// print too: the shortest digits that read back as the same float, in
// positional notation with at least one digit after the point, unless the
// decimal exponent is below -4 or above 15 (1e-05, 1e+16).
func (f pyFloat) String() string {
	x := float64(f)
	switch {
	case math.IsNaN(x):
		return "nan"
	case math.IsInf(x, 1):
		return "inf"
	case math.IsInf(x, -1):
		return "-inf"
	}
	// -d.ddde±XX: the shortest digits and the exponent of the first.
	sci := strconv.FormatFloat(math.Abs(x), 'e', -1, 64)
	mantissa, exponent, _ := strings.Cut(sci, "e")
	digits := strings.Replace(mantissa, ".", "", 1)
	exp, _ := strconv.Atoi(exponent)
	point := exp + 1 // digits before the point
	var s string
	switch {
	case point <= -4 || point > 16:
		s = digits[:1]
		if len(digits) > 1 {
			s += "." + digits[1:]
		}
		sign := "+"
		if exp < 0 {
			sign, exp = "-", -exp
		}
		s += fmt.Sprintf("e%s%02d", sign, exp)
	case point <= 0:
		s = "0." + strings.Repeat("0", -point) + digits
	case point >= len(digits):
		s = digits + strings.Repeat("0", point-len(digits)) + ".0"
	default:
		s = digits[:point] + "." + digits[point:]
	}
	if math.Signbit(x) {
		s = "-" + s
	}
	return s
}

// jsonText is the float as Python's json module writes it.
func (f pyFloat) jsonText() string {
	switch x := float64(f); {
	case math.IsNaN(x):
		return "NaN"
	case math.IsInf(x, 1):
		return "Infinity"
	case math.IsInf(x, -1):
		return "-Infinity"
	}
	return f.String()
}

func isScalar(v any) bool {
	switch v.(type) {
	case []any, *object:
		return false
	}
	return true
}
