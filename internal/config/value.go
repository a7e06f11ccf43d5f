package config

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// Value is where a setting's value goes, and its default. Make one with
// String, Int, Bool, Duration or List; no other types are needed yet, and
// each has to say how it reads from a flag, a variable and the file.
type Value interface {
	// typeName names the argument in help: "string", "int", ...
	typeName() string
	// want describes a good value, for errors: "a whole number".
	want() string
	reset()
	// check parses one flag argument without storing it, so that a bad
	// flag fails while the flags are parsed, before the file is read.
	check(arg string) error
	// setFlag stores a flag's arguments, in the order given.
	setFlag(args []string) error
	// setText stores a value as an environment variable gives it (a
	// list: comma-separated).
	setText(text string) error
	// setFile stores a value of the configuration file. Its error is
	// errWrongType, or says what was wrong with the value ("not \"x\"").
	setFile(md *toml.MetaData, p toml.Primitive) error
	// defaultText formats the default for people.
	defaultText() string
	isZero() bool
	// tomlValue is the current value as it is written in the file, each
	// string passed through redact.
	tomlValue(redact func(string) string) any
	isBool() bool
}

// scalar is a Value holding one T; scalarType says how T reads and prints.
type scalar[T comparable] struct {
	dst *T
	def T
	typ *scalarType[T]
}

type scalarType[T comparable] struct {
	name   string
	want   string
	parse  func(string) (T, error)
	format func(T) string
	// fromFile decodes the file's value, as setFile.
	fromFile func(md *toml.MetaData, p toml.Primitive) (T, error)
	toTOML   func(T, func(string) string) any
}

func (v *scalar[T]) typeName() string                    { return v.typ.name }
func (v *scalar[T]) want() string                        { return v.typ.want }
func (v *scalar[T]) reset()                              { *v.dst = v.def }
func (v *scalar[T]) isZero() bool                        { var zero T; return *v.dst == zero }
func (v *scalar[T]) isBool() bool                        { return v.typ.name == "bool" }
func (v *scalar[T]) tomlValue(r func(string) string) any { return v.typ.toTOML(*v.dst, r) }

func (v *scalar[T]) check(arg string) error {
	_, err := v.typ.parse(arg)
	return err
}

func (v *scalar[T]) setFlag(args []string) error {
	return v.setText(args[len(args)-1]) // the last one given wins, as with the flag package
}

func (v *scalar[T]) setText(text string) error {
	x, err := v.typ.parse(text)
	if err != nil {
		return err
	}
	*v.dst = x
	return nil
}

func (v *scalar[T]) setFile(md *toml.MetaData, p toml.Primitive) error {
	x, err := v.typ.fromFile(md, p)
	if err != nil {
		return err
	}
	*v.dst = x
	return nil
}

func (v *scalar[T]) defaultText() string { return v.typ.format(v.def) }

// errWrongType is the error of a file's value of the wrong TOML type;
// the caller, who knows the key, says which type it has.
var errWrongType = errors.New("wrong type")

// decodeAs decodes the file's value into a T, which fails if the TOML
// type does not fit: a string is no int.
func decodeAs[T any](md *toml.MetaData, p toml.Primitive) (T, error) {
	var x T
	if err := md.PrimitiveDecode(p, &x); err != nil {
		return x, errWrongType
	}
	return x, nil
}

var stringType = &scalarType[string]{
	name:     "string",
	want:     "a string",
	parse:    func(s string) (string, error) { return s, nil },
	format:   func(s string) string { return s },
	fromFile: decodeAs[string],
	toTOML:   func(s string, redact func(string) string) any { return redact(s) },
}

var intType = &scalarType[int]{
	name:   "int",
	want:   "a whole number",
	parse:  strconv.Atoi,
	format: strconv.Itoa,
	fromFile: func(md *toml.MetaData, p toml.Primitive) (int, error) {
		n, err := decodeAs[int64](md, p)
		if err == nil && int64(int(n)) != n {
			err = fmt.Errorf("not %d, out of range", n)
		}
		return int(n), err
	},
	toTOML: func(n int, _ func(string) string) any { return n },
}

var boolType = &scalarType[bool]{
	name:     "bool",
	want:     "true or false",
	parse:    strconv.ParseBool,
	format:   strconv.FormatBool,
	fromFile: decodeAs[bool],
	toTOML:   func(b bool, _ func(string) string) any { return b },
}

// TOML has no durations: the file holds them as strings, as "24h".
var durationType = &scalarType[time.Duration]{
	name:   "duration",
	want:   "a duration such as 90s or 24h",
	parse:  time.ParseDuration,
	format: formatDuration,
	fromFile: func(md *toml.MetaData, p toml.Primitive) (time.Duration, error) {
		s, err := decodeAs[string](md, p)
		if err != nil {
			return 0, err
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			return 0, fmt.Errorf("not %q", s)
		}
		return d, nil
	},
	toTOML: func(d time.Duration, _ func(string) string) any { return formatDuration(d) },
}

// formatDuration writes 24h rather than time.Duration's 24h0m0s.
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// String is a string setting.
func String(dst *string, def string) Value {
	return &scalar[string]{dst: dst, def: def, typ: stringType}
}

// Int is a whole-number setting.
func Int(dst *int, def int) Value { return &scalar[int]{dst: dst, def: def, typ: intType} }

// Bool is a setting that is on or off; as a flag, --name alone turns it on.
func Bool(dst *bool, def bool) Value { return &scalar[bool]{dst: dst, def: def, typ: boolType} }

// Duration is a setting written as time.ParseDuration reads it ("90s").
func Duration(dst *time.Duration, def time.Duration) Value {
	return &scalar[time.Duration]{dst: dst, def: def, typ: durationType}
}

// List is a setting of several strings: the flag may be repeated, the
// environment variable separates them with commas, the file has an array.
// Whichever source gives the list gives all of it: the flags' list
// replaces the variable's, rather than adding to it.
func List(dst *[]string, def []string) Value { return &list{dst: dst, def: def} }

type list struct {
	dst *[]string
	def []string
}

func (v *list) typeName() string   { return "string" }
func (v *list) want() string       { return "a list of strings" }
func (v *list) reset()             { *v.dst = append([]string(nil), v.def...) }
func (v *list) check(string) error { return nil }
func (v *list) isZero() bool       { return len(*v.dst) == 0 }
func (v *list) isBool() bool       { return false }

func (v *list) setFlag(args []string) error {
	*v.dst = append([]string(nil), args...)
	return nil
}

func (v *list) setText(text string) error {
	*v.dst = splitList(text)
	return nil
}

func (v *list) setFile(md *toml.MetaData, p toml.Primitive) error {
	l, err := decodeAs[[]string](md, p)
	if err != nil {
		return err
	}
	if len(l) == 0 {
		l = nil // as an empty variable gives, so that empty lists compare equal
	}
	*v.dst = l
	return nil
}

func (v *list) defaultText() string { return strings.Join(v.def, ",") }

func (v *list) tomlValue(redact func(string) string) any {
	out := make([]string, 0, len(*v.dst)) // empty, not nil, so that it is written as []
	for _, s := range *v.dst {
		out = append(out, redact(s))
	}
	return out
}

// splitList splits a comma-separated list, dropping spaces around the
// items and empty items.
func splitList(s string) []string {
	var out []string
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}
