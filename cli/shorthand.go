package cli

import (
	"fmt"
	"regexp"
	"strings"
)

// The aws CLI's shorthand syntax for structures, maps and lists of them
// (awscli/shorthand.py), with the same grammar:
//
//	parameter  = keyval *("," keyval)
//	keyval     = key "=" values
//	values     = csv-value / explicit-list / hash-literal
//	csv-value  = first-value *("," second-value)   ; a list if more than one
//	explicit-list = "[" [value *("," value)] "]"
//	hash-literal  = "{" [keyval *("," keyval)] "}"
//
// Values may be single- or double-quoted; "\," is a literal comma.

const (
	shStartWord   = `!#-&(-+\--<>-Z\\-z|-\x{ffff}`
	shFirstFollow = `\s!#-&(-+\--\\^-|~-\x{ffff}`
	shSecondFollw = `\s!#-&(-+\--<>-\x{ffff}`
	shEscComma    = `(\\,)`
)

var (
	shFirstValue  = regexp.MustCompile(`^(` + shEscComma + `|[` + shStartWord + `])(` + shEscComma + `|[` + shFirstFollow + `])*`)
	shSecondValue = regexp.MustCompile(`^(` + shEscComma + `|[` + shStartWord + `])(` + shEscComma + `|[` + shSecondFollw + `])*`)
	shSingleQuote = regexp.MustCompile(`^'(?:\\'|[^'])*'`)
	shDoubleQuote = regexp.MustCompile(`^"(?:\\"|[^"])*"`)
)

const shKeyChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.#/:"

// shorthandError is a syntax error in a shorthand value.
type shorthandError struct {
	msg string
}

func (e *shorthandError) Error() string { return e.msg }

type shorthandParser struct {
	in []rune
	i  int
}

// parseShorthand parses a shorthand value into an *object whose values are
// strings, []any and *object.
func parseShorthand(s string) (v *object, err error) {
	p := &shorthandParser{in: []rune(s)}
	defer func() {
		if r := recover(); r != nil {
			se, ok := r.(*shorthandError)
			if !ok {
				panic(r)
			}
			err = se
		}
	}()
	return p.parameter(), nil
}

func (p *shorthandParser) fail(expected, actual string) {
	// Point at the place, as the aws CLI does.
	loc := string(p.in) + "\n" + strings.Repeat(" ", p.i) + "^"
	panic(&shorthandError{fmt.Sprintf("Expected: '%s', received: '%s' for input:\n%s", expected, actual, loc)})
}

func (p *shorthandParser) eof() bool { return p.i >= len(p.in) }

func (p *shorthandParser) current() rune {
	if p.eof() {
		return -1
	}
	return p.in[p.i]
}

func (p *shorthandParser) skipSpace() {
	for !p.eof() && strings.ContainsRune(" \t\n\r\x0b\x0c", p.in[p.i]) {
		p.i++
	}
}

func (p *shorthandParser) expect(c rune, skipSpace bool) {
	if skipSpace {
		p.skipSpace()
	}
	if p.eof() {
		p.fail(string(c), "EOF")
	}
	if p.in[p.i] != c {
		p.fail(string(c), string(p.in[p.i]))
	}
	p.i++
	if skipSpace {
		p.skipSpace()
	}
}

func (p *shorthandParser) parameter() *object {
	params := newObject()
	k, v := p.keyval()
	params.set(k, v)
	last := p.i
	for !p.eof() {
		p.expect(',', true)
		k, v := p.keyval()
		if _, dup := params.get(k); dup {
			loc := string(p.in) + "\n" + strings.Repeat(" ", last+1) + "^"
			panic(&shorthandError{fmt.Sprintf("Second instance of key \"%s\" encountered for input:\n%s\n"+
				"This is often because there is a preceding \",\" instead of a space.", k, loc)})
		}
		params.set(k, v)
		last = p.i
	}
	return params
}

func (p *shorthandParser) keyval() (string, any) {
	k := p.key()
	p.expect('=', true)
	return k, p.values()
}

func (p *shorthandParser) key() string {
	start := p.i
	for !p.eof() && strings.ContainsRune(shKeyChars, p.in[p.i]) {
		p.i++
	}
	return string(p.in[start:p.i])
}

func (p *shorthandParser) values() any {
	switch {
	case p.eof():
		return ""
	case p.current() == '[':
		return p.explicitList()
	case p.current() == '{':
		return p.hashLiteral()
	}
	return p.csvValue()
}

func (p *shorthandParser) csvValue() any {
	first := p.firstValue()
	p.skipSpace()
	if p.eof() || p.in[p.i] != ',' {
		return first
	}
	p.expect(',', true)
	list := []any{first}
	for {
		cur, ok := p.trySecondValue()
		if !ok {
			if p.eof() {
				p.fail("<second>", "<none>")
			}
			p.backtrackTo(',')
			break
		}
		p.skipSpace()
		if p.eof() {
			list = append(list, cur)
			break
		}
		if p.current() != ',' {
			p.backtrackTo(',')
			break
		}
		p.expect(',', true)
		list = append(list, cur)
	}
	if len(list) == 1 {
		return first
	}
	return list
}

func (p *shorthandParser) backtrackTo(c rune) {
	for p.i >= 0 && (p.i >= len(p.in) || p.in[p.i] != c) {
		p.i--
	}
}

func (p *shorthandParser) match(re *regexp.Regexp) (string, bool) {
	rest := string(p.in[p.i:])
	loc := re.FindStringIndex(rest)
	if loc == nil {
		return "", false
	}
	m := rest[:loc[1]]
	p.i += len([]rune(m))
	return m, true
}

func (p *shorthandParser) firstValue() string {
	switch p.current() {
	case '\'':
		return p.quoted(shSingleQuote, "'")
	case '"':
		return p.quoted(shDoubleQuote, `"`)
	}
	m, ok := p.match(shFirstValue)
	if !ok {
		return ""
	}
	return strings.TrimRight(strings.ReplaceAll(m, `\,`, ","), " \t\n\r\x0b\x0c")
}

func (p *shorthandParser) trySecondValue() (v string, ok bool) {
	switch p.current() {
	case '\'':
		return p.quoted(shSingleQuote, "'"), true
	case '"':
		return p.quoted(shDoubleQuote, `"`), true
	}
	m, ok := p.match(shSecondValue)
	if !ok {
		return "", false
	}
	return strings.TrimRight(strings.ReplaceAll(m, `\,`, ","), " \t\n\r\x0b\x0c"), true
}

func (p *shorthandParser) quoted(re *regexp.Regexp, q string) string {
	m, ok := p.match(re)
	if !ok {
		p.fail("<"+map[string]string{"'": "singled quoted", `"`: "double quoted"}[q]+">", "<none>")
	}
	v := m[1 : len(m)-1]
	v = strings.ReplaceAll(v, `\`+q, q)
	return strings.ReplaceAll(v, `\\`, `\`)
}

func (p *shorthandParser) explicitList() []any {
	p.expect('[', true)
	list := []any{}
	for p.current() != ']' {
		if p.eof() {
			p.fail("]", "EOF")
		}
		list = append(list, p.explicitValue())
		p.skipSpace()
		if p.current() != ']' {
			p.expect(',', false)
			p.skipSpace()
		}
	}
	p.expect(']', false)
	return list
}

func (p *shorthandParser) explicitValue() any {
	switch p.current() {
	case '[':
		return p.explicitList()
	case '{':
		return p.hashLiteral()
	}
	return p.firstValue()
}

func (p *shorthandParser) hashLiteral() *object {
	p.expect('{', true)
	o := newObject()
	for p.current() != '}' {
		if p.eof() {
			p.fail("}", "EOF")
		}
		k := p.key()
		p.expect('=', true)
		v := p.explicitValue()
		p.skipSpace()
		if p.current() != '}' {
			p.expect(',', false)
			p.skipSpace()
		}
		o.set(k, v)
	}
	p.expect('}', false)
	return o
}
