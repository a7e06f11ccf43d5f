package cli

import "strings"

// The API model: the shapes of the operations' inputs and outputs, as the
// service model (botocore's ivs-realtime service-2.json) has them. The CLI
// takes its flags, its validation and the order in which it prints fields
// from it, as the aws CLI does. model_gen.go is generated from botocore's
// copy by `go test ./cli -run TestModel -update`.

// shape is one shape of the model.
type shape struct {
	Name     string
	Type     string   // structure, list, map, string, integer, long, float, double, boolean, timestamp
	Members  []member // structure
	Required []string // structure
	Member   string   // list: the shape of the elements
	Key      string   // map
	Value    string   // map
	Min, Max *int64
	Enum     []string
	Doc      string
}

// member is one member of a structure.
type member struct {
	Name     string
	Shape    string
	Location string // "", "uri", "querystring" or "header"
	// LocationName is the name of the header, query parameter or URI
	// label the member goes in, when it is not the member's.
	LocationName string
	Doc          string
}

// operation is one operation of the API and its CLI command.
type operation struct {
	Name   string // GetStage
	Method string
	URI    string
	Input  string
	Output string
	Doc    string
}

func ptr(n int64) *int64 { return &n }

func shapeOf(name string) *shape { return modelShapes[name] }

func (s *shape) member(name string) (member, bool) {
	for _, m := range s.Members {
		if m.Name == name {
			return m, true
		}
	}
	return member{}, false
}

func (s *shape) required(name string) bool {
	for _, r := range s.Required {
		if r == name {
			return true
		}
	}
	return false
}

func (s *shape) scalar() bool {
	switch s.Type {
	case "structure", "list", "map":
		return false
	}
	return true
}

// complex reports whether the aws CLI parses a value of s as shorthand
// syntax: structures, maps, and lists of those.
func (s *shape) complex() bool {
	switch s.Type {
	case "structure", "map":
		return true
	case "list":
		return !shapeOf(s.Member).scalar()
	}
	return false
}

// commandName is the CLI name of an operation: GetStage → get-stage.
func commandName(op string) string { return xformName(op) }

// xformName turns a camel-case name into the aws CLI's dashed form:
// participantTokenConfigurations → participant-token-configurations.
func xformName(name string) string {
	var b strings.Builder
	rs := []rune(name)
	for i, r := range rs {
		upper := r >= 'A' && r <= 'Z'
		if upper && i > 0 {
			prevLower := rs[i-1] >= 'a' && rs[i-1] <= 'z' || rs[i-1] >= '0' && rs[i-1] <= '9'
			nextLower := i+1 < len(rs) && rs[i+1] >= 'a' && rs[i+1] <= 'z'
			prevUpper := rs[i-1] >= 'A' && rs[i-1] <= 'Z'
			if prevLower || prevUpper && nextLower {
				b.WriteByte('-')
			}
		}
		if upper {
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}

// operationByCommand finds the operation of a CLI command.
func operationByCommand(cmd string) *operation {
	for _, op := range modelOperations {
		if commandName(op.Name) == cmd {
			return op
		}
	}
	return nil
}
