package cli

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// usageError is a command line the CLI cannot run: unknown options,
// missing arguments, values that do not parse or validate.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usageErrorf(format string, args ...any) error {
	return &usageError{fmt.Sprintf(format, args...)}
}

// paramError is the aws CLI's "Error parsing parameter" for a value that
// does not parse.
func paramError(cliName, format string, args ...any) error {
	return &usageError{fmt.Sprintf("Error parsing parameter '%s': %s", cliName, fmt.Sprintf(format, args...))}
}

// pageArgs are the aws CLI's pagination options of a paginated operation.
type pageArgs struct {
	startingToken string
	pageSize      int64
	pageSizeSet   bool // --page-size given, 0 included: botocore sends it, and refuses 0
	maxItems      int64
	manual        bool // --next-token or --max-results given: no automatic pagination
}

// commandArgs is a parsed operation command line.
type commandArgs struct {
	input    *object // the operation's input, in the model's names
	page     pageArgs
	skeleton string // --generate-cli-skeleton: "input" or "output"
	help     bool
}

// flagSpec is one flag of an operation command.
type flagSpec struct {
	cli    string // --stage-arn
	member member
	shape  *shape
}

// operationFlags returns the flags of op's input members, in model order.
func operationFlags(op *operation) []flagSpec {
	var flags []flagSpec
	for _, m := range shapeOf(op.Input).Members {
		flags = append(flags, flagSpec{cli: "--" + xformName(m.Name), member: m, shape: shapeOf(m.Shape)})
	}
	return flags
}

// isOption reports whether an argument is an option rather than the value
// of the one before it. As in argparse, which the aws CLI uses, a string
// starting with "--" is a value if it has a space: a PEM block such as
// --public-key-material "$(cat public.pem)" takes starts with dashes.
func isOption(arg string) bool {
	return strings.HasPrefix(arg, "--") && !strings.Contains(arg, " ")
}

// parseCommandArgs parses the arguments after an operation's command name.
// Global options have been taken out already.
func parseCommandArgs(op *operation, args []string) (*commandArgs, error) {
	flags := operationFlags(op)
	byName := map[string]flagSpec{}
	for _, f := range flags {
		byName[f.cli] = f
	}
	_, paginated := paginators[op.Name]
	ca := &commandArgs{input: newObject()}
	raw := map[string][]string{}
	var order []string
	var bools = map[string]bool{}
	var inputJSON string
	var unknown []string

	for i := 0; i < len(args); i++ {
		arg := args[i]
		name, inline, hasInline := strings.Cut(arg, "=")
		if !strings.HasPrefix(arg, "--") {
			unknown = append(unknown, arg)
			continue
		}
		// one returns the flag's single value.
		one := func() (string, error) {
			if hasInline {
				return inline, nil
			}
			if i+1 >= len(args) || isOption(args[i+1]) {
				return "", usageErrorf("argument %s: expected one argument", name)
			}
			i++
			return args[i], nil
		}
		switch name {
		case "--help", "-h":
			ca.help = true
			continue
		case "--cli-input-json":
			v, err := one()
			if err != nil {
				return nil, err
			}
			inputJSON = v
			continue
		case "--generate-cli-skeleton":
			ca.skeleton = "input"
			if hasInline {
				ca.skeleton = inline
			} else if i+1 < len(args) && !isOption(args[i+1]) {
				i++
				ca.skeleton = args[i]
			}
			if ca.skeleton != "input" && ca.skeleton != "output" {
				return nil, usageErrorf("argument --generate-cli-skeleton: invalid choice: '%s' (choose from 'input', 'output')", ca.skeleton)
			}
			continue
		}
		if paginated {
			switch name {
			case "--starting-token":
				v, err := one()
				if err != nil {
					return nil, err
				}
				ca.page.startingToken = v
				continue
			case "--page-size", "--max-items":
				v, err := one()
				if err != nil {
					return nil, err
				}
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					return nil, paramError(name, "invalid integer: '%s'", v)
				}
				if name == "--page-size" {
					ca.page.pageSize, ca.page.pageSizeSet = n, true
				} else {
					ca.page.maxItems = n
				}
				continue
			}
		}
		f, ok := byName[name]
		if !ok && strings.HasPrefix(name, "--no-") {
			if bf, ok := byName["--"+strings.TrimPrefix(name, "--no-")]; ok && bf.shape.Type == "boolean" && !hasInline {
				bools[bf.cli] = false
				order = append(order, bf.cli)
				continue
			}
		}
		if !ok {
			unknown = append(unknown, arg)
			continue
		}
		switch {
		case f.shape.Type == "boolean" && !hasInline:
			bools[f.cli] = true
			order = append(order, f.cli)
		case f.shape.Type == "list":
			var vals []string
			if hasInline {
				vals = append(vals, inline)
			}
			for i+1 < len(args) && !isOption(args[i+1]) {
				i++
				vals = append(vals, args[i])
			}
			if len(vals) == 0 {
				return nil, usageErrorf("argument %s: expected at least one argument", name)
			}
			raw[f.cli] = vals
			order = append(order, f.cli)
		default:
			v, err := one()
			if err != nil {
				return nil, err
			}
			raw[f.cli] = []string{v}
			order = append(order, f.cli)
		}
	}
	if len(unknown) > 0 {
		return nil, usageErrorf("Unknown options: %s", strings.Join(unknown, ", "))
	}
	if ca.help || ca.skeleton != "" {
		return ca, nil
	}

	// Values in the model's order, as the aws CLI builds its call.
	seen := map[string]bool{}
	for _, f := range flags {
		if b, ok := bools[f.cli]; ok {
			ca.input.set(f.member.Name, b)
			seen[f.cli] = true
			continue
		}
		vals, ok := raw[f.cli]
		if !ok {
			continue
		}
		v, err := unpackArg(f, vals)
		if err != nil {
			return nil, err
		}
		ca.input.set(f.member.Name, v)
		seen[f.cli] = true
		if paginated && (f.member.Name == "nextToken" || f.member.Name == "maxResults") {
			ca.page.manual = true
		}
	}
	if paginated && ca.page.manual && (ca.page.startingToken != "" || ca.page.pageSize != 0 || ca.page.maxItems != 0) {
		var used []string
		if ca.page.startingToken != "" {
			used = append(used, "--starting-token")
		}
		if ca.page.pageSize != 0 {
			used = append(used, "--page-size")
		}
		if ca.page.maxItems != 0 {
			used = append(used, "--max-items")
		}
		return nil, usageErrorf("Cannot specify --no-paginate along with pagination arguments: %s", strings.Join(used, ", "))
	}

	if inputJSON != "" {
		data, err := paramFile(inputJSON)
		if err != nil {
			return nil, paramError("--cli-input-json", "%v", err)
		}
		v, err := decodeJSON([]byte(data))
		if err != nil {
			return nil, usageErrorf("Error parsing parameter '--cli-input-json': Invalid JSON received.")
		}
		in, ok := v.(*object)
		if !ok {
			return nil, usageErrorf("Invalid type for parameter --cli-input-json, value must be a JSON object")
		}
		// What the command line gives wins over the file.
		for _, k := range in.keys {
			if _, given := ca.input.get(k); !given {
				ca.input.set(k, in.vals[k])
			}
		}
	} else {
		var missing []string
		for _, f := range flags {
			if shapeOf(op.Input).required(f.member.Name) && !seen[f.cli] {
				missing = append(missing, f.cli)
			}
		}
		if len(missing) > 0 {
			return nil, usageErrorf("the following arguments are required: %s", strings.Join(missing, ", "))
		}
	}
	if errs := validate(shapeOf(op.Input), ca.input, "input", ""); len(errs) > 0 {
		return nil, usageErrorf("Parameter validation failed:\n%s", strings.Join(errs, "\n"))
	}
	return ca, nil
}

// paramFile reads the value of a file:// or fileb:// parameter, as the aws
// CLI does for every parameter value; other values are returned as is.
func paramFile(v string) (string, error) {
	for _, prefix := range []string{"file://", "fileb://"} {
		if strings.HasPrefix(strings.ToLower(v), prefix) {
			path := v[len(prefix):]
			if strings.HasPrefix(path, "~/") {
				if home, err := os.UserHomeDir(); err == nil {
					path = filepath.Join(home, path[2:])
				}
			}
			data, err := os.ReadFile(os.ExpandEnv(path))
			if err != nil {
				return "", fmt.Errorf("Unable to load paramfile %s: %v", v, err)
			}
			return string(data), nil
		}
	}
	return v, nil
}

// unpackArg turns the strings given to a flag into a value of its shape:
// JSON, shorthand syntax, a list of scalars, or a scalar.
func unpackArg(f flagSpec, vals []string) (any, error) {
	for i, v := range vals {
		data, err := paramFile(v)
		if err != nil {
			return nil, paramError(f.cli, "%v", err)
		}
		vals[i] = data
	}
	s := f.shape
	looksJSON := func(v string) bool {
		t := strings.TrimSpace(v)
		return strings.HasPrefix(t, "{") || strings.HasPrefix(t, "[")
	}
	fromJSON := func(v string) (any, error) {
		x, err := decodeJSON([]byte(v))
		if err != nil {
			return nil, paramError(f.cli, "Invalid JSON: %v\nJSON received: %s", err, v)
		}
		return x, nil
	}
	if s.complex() {
		if looksJSON(vals[0]) {
			if s.Type != "list" || len(vals) == 1 && strings.HasPrefix(strings.TrimSpace(vals[0]), "[") {
				return fromJSON(vals[0])
			}
			// A list of JSON objects, one per value.
			var list []any
			for _, v := range vals {
				x, err := fromJSON(v)
				if err != nil {
					return nil, err
				}
				list = append(list, x)
			}
			return list, nil
		}
		target := s
		if s.Type == "list" {
			target = shapeOf(s.Member)
		}
		var list []any
		for _, v := range vals {
			parsed, err := parseShorthand(v)
			if err != nil {
				return nil, paramError(f.cli, "%v", err)
			}
			x, err := backCompat(target, parsed)
			if err != nil {
				// The aws CLI lets the ValueError of this conversion
				// through unwrapped: it prints alone, and exits 255.
				return nil, err
			}
			list = append(list, x)
		}
		if s.Type == "list" {
			return list, nil
		}
		return list[0], nil
	}
	if s.Type == "list" {
		if len(vals) == 1 && strings.HasPrefix(strings.TrimSpace(vals[0]), "[") {
			return fromJSON(vals[0])
		}
		var list []any
		for _, v := range vals {
			x, err := scalarArg(f.cli, shapeOf(s.Member), v)
			if err != nil {
				return nil, err
			}
			list = append(list, x)
		}
		return list, nil
	}
	if s.Type == "structure" || s.Type == "map" {
		return fromJSON(vals[0])
	}
	return scalarArg(f.cli, s, vals[0])
}

func scalarArg(cliName string, s *shape, v string) (any, error) {
	switch s.Type {
	case "integer", "long":
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return nil, paramError(cliName, "invalid literal for int() with base 10: '%s'", v)
		}
		return json.Number(strconv.FormatInt(n, 10)), nil
	case "float", "double":
		f, err := floatArg(v)
		if err != nil {
			return nil, paramError(cliName, "%v", err)
		}
		return f, nil
	case "boolean":
		return !strings.EqualFold(v, "false") && v != "", nil
	}
	return v, nil
}

// floatArg converts a value given as text to a float member, as the aws
// CLI does with Python's float(): "30" is 30.0. The number is kept as the
// text Python would print, for messages that quote it; a value that is
// not a finite number cannot be sent as JSON and is refused.
func floatArg(v string) (json.Number, error) {
	f, err := parsePyFloat(v)
	if err != nil {
		return "", fmt.Errorf("could not convert string to float: '%s'", v)
	}
	if x := float64(f); math.IsInf(x, 0) || math.IsNaN(x) {
		return "", fmt.Errorf("%s is not a finite number", v)
	}
	return json.Number(f.String()), nil
}

// backCompat adjusts what the shorthand parser gives to the model, as the
// aws CLI's BackCompatVisitor does: a single value where a list is
// expected becomes a list of one, and numbers and booleans are converted.
func backCompat(s *shape, v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	switch s.Type {
	case "structure":
		o, ok := v.(*object)
		if !ok {
			return v, nil
		}
		for _, m := range s.Members {
			mv, ok := o.get(m.Name)
			if !ok {
				continue
			}
			x, err := backCompat(shapeOf(m.Shape), mv)
			if err != nil {
				return nil, err
			}
			o.set(m.Name, x)
		}
		return o, nil
	case "list":
		list, ok := v.([]any)
		if !ok {
			x, err := backCompat(shapeOf(s.Member), v)
			if err != nil {
				return nil, err
			}
			return []any{x}, nil
		}
		for i, e := range list {
			x, err := backCompat(shapeOf(s.Member), e)
			if err != nil {
				return nil, err
			}
			list[i] = x
		}
		return list, nil
	case "map":
		o, ok := v.(*object)
		if !ok {
			return v, nil
		}
		for _, k := range o.keys {
			x, err := backCompat(shapeOf(s.Value), o.vals[k])
			if err != nil {
				return nil, err
			}
			o.vals[k] = x
		}
		return o, nil
	case "integer", "long":
		if str, ok := v.(string); ok {
			n, err := strconv.ParseInt(str, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("invalid literal for int() with base 10: '%s'", str)
			}
			return json.Number(strconv.FormatInt(n, 10)), nil
		}
	case "float", "double":
		if str, ok := v.(string); ok {
			return floatArg(str)
		}
	case "boolean":
		if str, ok := v.(string); ok {
			switch strings.ToLower(str) {
			case "true":
				return true, nil
			case "false":
				return false, nil
			}
		}
	}
	return v, nil
}

// validate checks v against s as botocore's ParamValidator does before a
// request is sent: types, required members, unknown members, minimum
// lengths and values. Maximums and patterns are the server's to check.
func validate(s *shape, v any, where, path string) []string {
	var errs []string
	typeErr := func(valid string) {
		errs = append(errs, fmt.Sprintf("Invalid type for parameter %s, value: %s, type: %s, valid types: %s",
			path, pyRepr(v), pyType(v), valid))
	}
	switch s.Type {
	case "structure":
		o, ok := v.(*object)
		if !ok {
			typeErr("<class 'dict'>")
			return errs
		}
		for _, r := range s.Required {
			if x, ok := o.get(r); !ok || x == nil {
				errs = append(errs, fmt.Sprintf("Missing required parameter in %s: \"%s\"", where, r))
			}
		}
		for _, k := range o.keys {
			m, ok := s.member(k)
			if !ok {
				var names []string
				for _, m := range s.Members {
					names = append(names, m.Name)
				}
				errs = append(errs, fmt.Sprintf("Unknown parameter in %s: \"%s\", must be one of: %s", where, k, strings.Join(names, ", ")))
				continue
			}
			p := k
			if path != "" {
				p = path + "." + k
			}
			if o.vals[k] == nil {
				continue
			}
			errs = append(errs, validate(shapeOf(m.Shape), o.vals[k], p, p)...)
		}
	case "list":
		list, ok := v.([]any)
		if !ok {
			typeErr("<class 'list'>, <class 'tuple'>")
			return errs
		}
		if s.Min != nil && int64(len(list)) < *s.Min {
			errs = append(errs, fmt.Sprintf("Invalid length for parameter %s, value: %d, valid min length: %d", path, len(list), *s.Min))
		}
		for i, e := range list {
			p := fmt.Sprintf("%s[%d]", path, i)
			errs = append(errs, validate(shapeOf(s.Member), e, p, p)...)
		}
	case "map":
		o, ok := v.(*object)
		if !ok {
			typeErr("<class 'dict'>")
			return errs
		}
		for _, k := range o.keys {
			errs = append(errs, validate(shapeOf(s.Key), k, path, path)...)
			p := path + "." + k
			errs = append(errs, validate(shapeOf(s.Value), o.vals[k], p, p)...)
		}
	case "string":
		str, ok := v.(string)
		if !ok {
			typeErr("<class 'str'>")
			return errs
		}
		if n := len([]rune(str)); s.Min != nil && int64(n) < *s.Min {
			errs = append(errs, fmt.Sprintf("Invalid length for parameter %s, value: %d, valid min length: %d", path, n, *s.Min))
		}
	case "integer", "long":
		num, ok := v.(json.Number)
		n, err := num.Int64()
		if !ok || err != nil {
			typeErr("<class 'int'>")
			return errs
		}
		if s.Min != nil && n < *s.Min {
			errs = append(errs, fmt.Sprintf("Invalid value for parameter %s, value: %d, valid min value: %d", path, n, *s.Min))
		}
	case "float", "double":
		num, ok := v.(json.Number)
		f, err := parsePyFloat(num.String())
		if !ok || err != nil {
			typeErr("<class 'float'>, <class 'decimal.Decimal'>, <class 'int'>")
			return errs
		}
		if s.Min != nil && float64(f) < float64(*s.Min) {
			errs = append(errs, fmt.Sprintf("Invalid value for parameter %s, value: %s, valid min value: %d", path, num, *s.Min))
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			typeErr("<class 'bool'>")
		}
	}
	return errs
}

func pyType(v any) string {
	switch v := v.(type) {
	case nil:
		return "<class 'NoneType'>"
	case bool:
		return "<class 'bool'>"
	case string:
		return "<class 'str'>"
	case json.Number:
		if _, err := v.Int64(); err == nil {
			return "<class 'int'>"
		}
		return "<class 'float'>"
	case []any:
		return "<class 'list'>"
	case *object:
		return "<class 'dict'>"
	}
	return fmt.Sprintf("%T", v)
}

// pyRepr is how a value shows in botocore's messages: str() of it.
func pyRepr(v any) string {
	var b strings.Builder
	var rec func(v any, top bool)
	rec = func(v any, top bool) {
		switch v := v.(type) {
		case string:
			if top {
				b.WriteString(v)
			} else {
				b.WriteString("'" + strings.ReplaceAll(v, "'", `\'`) + "'")
			}
		case []any:
			b.WriteString("[")
			for i, e := range v {
				if i > 0 {
					b.WriteString(", ")
				}
				rec(e, false)
			}
			b.WriteString("]")
		case *object:
			b.WriteString("{")
			for i, k := range v.keys {
				if i > 0 {
					b.WriteString(", ")
				}
				rec(k, false)
				b.WriteString(": ")
				rec(v.vals[k], false)
			}
			b.WriteString("}")
		default:
			b.WriteString(pyStr(v))
		}
	}
	rec(v, true)
	return b.String()
}

// sortedKeys returns the keys of m in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
