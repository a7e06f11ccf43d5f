package cli

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"flag"
	"fmt"
	"go/format"
	"html"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files and model_gen.go")

// cliOperations are the operations the CLI has commands for.
var cliOperations = []string{
	"CreateParticipantToken", "CreateStage", "CreateStorageConfiguration", "DeletePublicKey", "DeleteStage", "DeleteStorageConfiguration",
	"DisconnectParticipant", "GetParticipant", "GetPublicKey", "GetStage", "GetStageSession", "GetStorageConfiguration",
	"ImportPublicKey", "ListParticipantEvents", "ListParticipantReplicas", "ListParticipants", "ListPublicKeys", "ListStageSessions", "ListStages",
	"ListStorageConfigurations", "ListTagsForResource", "StartParticipantReplication", "StopParticipantReplication",
	"TagResource", "UntagResource", "UpdateStage",
	"CreateIngestConfiguration", "GetIngestConfiguration", "ListIngestConfigurations", "UpdateIngestConfiguration",
	"DeleteIngestConfiguration",
	"CreateEncoderConfiguration", "GetEncoderConfiguration", "ListEncoderConfigurations", "DeleteEncoderConfiguration",
	"StartComposition", "GetComposition", "ListCompositions", "StopComposition",
}

// botocoreModel reads the ivs-realtime model of the botocore installed
// with the aws CLI, or skips the test.
func botocoreModel(t *testing.T) *object {
	t.Helper()
	out, err := exec.Command("python3", "-c", "import botocore,os;print(os.path.dirname(botocore.__file__))").Output()
	if err != nil {
		t.Skip("botocore is not installed (python3 -c 'import botocore' failed)")
	}
	path := filepath.Join(strings.TrimSpace(string(out)), "data", "ivs-realtime", "2020-07-14", "service-2.json.gz")
	f, err := os.Open(path)
	if err != nil {
		t.Skipf("no ivs-realtime model in botocore: %v", err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	v, err := decodeJSON(data)
	if err != nil {
		t.Fatal(err)
	}
	return v.(*object)
}

// TestModel checks that model_gen.go is what botocore's model gives, and
// with -update rewrites it.
func TestModel(t *testing.T) {
	m := botocoreModel(t)
	src := generateModel(t, m)
	const path = "model_gen.go"
	if *update {
		if err := os.WriteFile(path, src, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	have, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(have, src) {
		t.Errorf("%s is not what botocore's model gives; run go test ./cli -run TestModel -update", path)
	}
}

func str(o *object, key string) string {
	v, _ := o.get(key)
	s, _ := v.(string)
	return s
}

func obj(o *object, key string) *object {
	v, _ := o.get(key)
	x, _ := v.(*object)
	return x
}

func generateModel(t *testing.T, m *object) []byte {
	shapes, ops := obj(m, "shapes"), obj(m, "operations")
	seen := map[string]bool{}
	var walk func(name string)
	walk = func(name string) {
		if seen[name] {
			return
		}
		seen[name] = true
		s := obj(shapes, name)
		for _, k := range []string{"member", "key", "value"} {
			if ref := obj(s, k); ref != nil {
				walk(str(ref, "shape"))
			}
		}
		if members := obj(s, "members"); members != nil {
			for _, k := range members.keys {
				walk(str(obj(members, k), "shape"))
			}
		}
	}
	var b bytes.Buffer
	b.WriteString("// Code generated from botocore's ivs-realtime service-2.json by TestModel; DO NOT EDIT.\n\npackage cli\n\n")
	b.WriteString("var modelOperations = []*operation{\n")
	for _, name := range cliOperations {
		op := obj(ops, name)
		in, out := str(obj(op, "input"), "shape"), str(obj(op, "output"), "shape")
		walk(in)
		walk(out)
		h := obj(op, "http")
		fmt.Fprintf(&b, "{Name: %q, Method: %q, URI: %q, Input: %q, Output: %q, Doc: %q},\n",
			name, str(h, "method"), str(h, "requestUri"), in, out, docText(str(op, "documentation")))
	}
	b.WriteString("}\n\nvar modelShapes = map[string]*shape{\n")
	var names []string
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		s := obj(shapes, n)
		fmt.Fprintf(&b, "%q: {Name: %q, Type: %q", n, n, str(s, "type"))
		if members := obj(s, "members"); members != nil && members.len() > 0 {
			b.WriteString(", Members: []member{")
			for _, k := range members.keys {
				mm := obj(members, k)
				fmt.Fprintf(&b, "{Name: %q, Shape: %q", k, str(mm, "shape"))
				if loc := str(mm, "location"); loc != "" {
					fmt.Fprintf(&b, ", Location: %q", loc)
				}
				if name := str(mm, "locationName"); name != "" && name != k {
					fmt.Fprintf(&b, ", LocationName: %q", name)
				}
				if d := docText(str(mm, "documentation")); d != "" {
					fmt.Fprintf(&b, ", Doc: %q", d)
				}
				b.WriteString("},")
			}
			b.WriteString("}")
		}
		if req, ok := s.get("required"); ok {
			fmt.Fprintf(&b, ", Required: %#v", toStrings(req))
		}
		for _, k := range []string{"member", "key", "value"} {
			if ref := obj(s, k); ref != nil {
				fmt.Fprintf(&b, ", %s: %q", strings.ToUpper(k[:1])+k[1:], str(ref, "shape"))
			}
		}
		for _, k := range []string{"min", "max"} {
			if v, ok := s.get(k); ok {
				fmt.Fprintf(&b, ", %s: ptr(%s)", strings.ToUpper(k[:1])+k[1:], v.(json.Number))
			}
		}
		if e, ok := s.get("enum"); ok {
			fmt.Fprintf(&b, ", Enum: %#v", toStrings(e))
		}
		b.WriteString("},\n")
	}
	b.WriteString("}\n")
	src, err := format.Source(b.Bytes())
	if err != nil {
		t.Fatalf("format generated model: %v\n%s", err, b.Bytes())
	}
	return src
}

func toStrings(v any) []string {
	var out []string
	for _, e := range v.([]any) {
		out = append(out, e.(string))
	}
	return out
}

var (
	reParagraph = regexp.MustCompile(`(?i)</?(p|ul|ol|note|important)>`)
	reItem      = regexp.MustCompile(`(?i)<li>\s*`)
	reTag       = regexp.MustCompile(`<[^>]*>`)
	reSpace     = regexp.MustCompile(`[ \t\r\n]+`)
	reBreaks    = regexp.MustCompile(`\n\s*(\n\s*)+`)
)

// docText turns the model's HTML documentation into plain paragraphs.
func docText(s string) string {
	s = reParagraph.ReplaceAllString(s, "\n\n")
	s = reItem.ReplaceAllString(s, "\n\n* ")
	s = reTag.ReplaceAllString(s, "")
	var paras []string
	for _, p := range reBreaks.Split(s, -1) {
		if p = strings.TrimSpace(reSpace.ReplaceAllString(html.UnescapeString(p), " ")); p != "" {
			paras = append(paras, p)
		}
	}
	return strings.Join(paras, "\n\n")
}
