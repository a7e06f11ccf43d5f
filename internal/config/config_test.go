package config

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// settings is a small table with one setting of each type.
type settings struct {
	Name    string
	Count   int
	On      bool
	Wait    time.Duration
	Items   []string
	Token   string
	Address string
}

func newSet(s *settings) *Set {
	set := &Set{
		Command:   "thing run",
		EnvPrefix: "THING_",
		FileFlag:  "config",
		FileEnv:   "THING_CONFIG",
		OtherEnv:  []string{"THING_CLIENT"},
		Settings: []Setting{
			{Flag: "name", Env: "THING_NAME", Key: "name", Value: String(&s.Name, "default name"), Help: "a name"},
			{Flag: "count", Env: "THING_COUNT", Key: "count", Value: Int(&s.Count, 3), Help: "a count"},
			{Flag: "on", Env: "THING_ON", Key: "on", Value: Bool(&s.On, false), Help: "a switch"},
			{Flag: "wait", Env: "THING_WAIT", Key: "wait", Value: Duration(&s.Wait, 90*time.Minute), Help: "a wait"},
			{Flag: "item", Env: "THING_ITEM", Key: "item", Value: List(&s.Items, []string{"a"}), Help: "items"},
			{Flag: "token", Env: "THING_TOKEN", Key: "token", Value: String(&s.Token, ""), Secret: true, Help: "a token"},
			{Flag: "address", Env: "THING_ADDRESS", Key: "address", Value: String(&s.Address, ""),
				Redact: func(string) string { return "hidden" }, Help: "an address"},
		},
	}
	set.Reset()
	return set
}

func writeFile(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "thing.toml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestDefaults(t *testing.T) {
	var got settings
	newSet(&got)
	want := settings{Name: "default name", Count: 3, Wait: 90 * time.Minute, Items: []string{"a"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

// TestLayers gives every setting in the file, some in the environment and
// a few as flags.
func TestLayers(t *testing.T) {
	var got settings
	set := newSet(&got)
	file := writeFile(t, `
name = "from file"
count = 10
on = true
wait = "1h"
item = ["x", "y"]
token = "file-token"
address = "file-address"
`)
	env := []string{"THING_CONFIG=" + file, "THING_COUNT=20", "THING_ITEM=p, q", "THING_TOKEN=env-token", "PATH=/bin"}
	l, err := set.Load([]string{"--count", "30", "--on=false", "--item", "r"}, env)
	if err != nil {
		t.Fatal(err)
	}
	want := settings{Name: "from file", Count: 30, On: false, Wait: time.Hour, Items: []string{"r"},
		Token: "env-token", Address: "file-address"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
	for flagName, source := range map[string]string{"name": file, "count": "--count", "on": "--on", "token": "THING_TOKEN"} {
		if got := l.Source(flagName); got != source {
			t.Errorf("source of %s: got %q, want %q", flagName, got, source)
		}
	}
	if l.File != file {
		t.Errorf("got file %q, want %q", l.File, file)
	}
}

func TestHelp(t *testing.T) {
	var s settings
	set := newSet(&s)
	if _, err := set.Load([]string{"-h"}, nil); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("got %v, want flag.ErrHelp", err)
	}
	if _, err := set.Load([]string{"--token", "flag-token", "--name", "flag-name"}, []string{"THING_TOKEN=env-token"}); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	set.Usage(&b)
	help := b.String()
	for _, bad := range []string{"flag-token", "env-token", "flag-name"} {
		if strings.Contains(help, bad) {
			t.Errorf("the help shows %q:\n%s", bad, help)
		}
	}
	for _, want := range []string{"--count int\n", "(THING_COUNT; file: count; default 3)", "default 1h30m", "--on\n",
		"may be repeated; THING_ITEM comma-separated", "--config file"} {
		if !strings.Contains(help, want) {
			t.Errorf("the help lacks %q:\n%s", want, help)
		}
	}
}

// TestWriteTOML: what WriteTOML writes reads back to the same settings,
// but for the secret, which it leaves out, and the redacted value.
func TestWriteTOML(t *testing.T) {
	var s settings
	set := newSet(&s)
	l, err := set.Load([]string{"--name", "quotes \" and \\ and\nnewline", "--token", "t0ken", "--address", "a"},
		[]string{"THING_ITEM="})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := set.WriteTOML(&b, l); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"# token is set but secret (from --token)\n", "item = [] # from THING_ITEM\n",
		`address = "hidden" # from --address; credentials redacted`, `wait = "1h30m"`} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "t0ken") {
		t.Errorf("output shows the secret:\n%s", out)
	}

	var back settings
	if _, err := newSet(&back).Load([]string{"--config", writeFile(t, out)}, nil); err != nil {
		t.Fatalf("read back: %v\n%s", err, out)
	}
	want := s
	want.Token, want.Address = "", "hidden"
	if !reflect.DeepEqual(back, want) {
		t.Errorf("read back %+v, want %+v", back, want)
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name string
		file string
		env  []string
		args []string
		want string
	}{
		{"dotted key", `na.me = "x"`, nil, nil, `unknown key "na"`},
		{"array of tables", "[[name]]\nx = 1", nil, nil, "thing.toml: name: want a string, not an array of tables"},
		{"table", "[wait]\nx = 1", nil, nil, "thing.toml: wait: want a duration such as 90s or 24h, not a table"},
		{"bool", `on = "yes"`, nil, nil, "thing.toml: on: want true or false, not a string"},
		{"list of numbers", `item = [1, 2]`, nil, nil, "thing.toml: item: want a list of strings, not an array"},
		{"environment", "", []string{"THING_COUNT=x"}, nil, `THING_COUNT="x": want a whole number`},
		{"empty environment variable", "", []string{"THING_WAIT="}, nil, `THING_WAIT="": want a duration`},
		{"short name, one letter off", "", []string{"THING_ONN=1"}, nil, "THING_ONN is not a setting of thing run, did you mean THING_ON?"},
		{"several mistakes at once", "count = \"x\"\nnaem = 1", nil, nil, `unknown key "naem", did you mean name?`},
		{"bool flag value", "", nil, []string{"--on=maybe"}, `invalid boolean value "maybe" for -on: want true or false (thing run -h lists the flags)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s settings
			args := tt.args
			if tt.file != "" {
				args = append([]string{"--config", writeFile(t, tt.file)}, args...)
			}
			_, err := newSet(&s).Load(args, tt.env)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got error %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

// TestEnvNames: which unknown variables with the prefix are mistakes,
// which are someone else's.
func TestEnvNames(t *testing.T) {
	tests := []struct {
		name    string
		isError bool
	}{
		{"THING_NAM", true},         // a letter missing
		{"THING_NMAE", true},        // two letters swapped
		{"THING_ITEMS", true},       // plural
		{"THING_ADRESS", true},      // a letter missing from a long name
		{"THING_ADDRESSES", true},   // two letters more on a long name
		{"THING_nAME", true},        // case does not make a name of its own
		{"THING_EN", true},          // one letter off a short name
		{"THING_COUNTER", false},    // two letters more on a short name
		{"THING_IT", false},         // two letters fewer on a short name
		{"THING_WAIT_FOR", false},   // a name of its own, made from a setting's
		{"THING_ADDRESS_V6", false}, // the same
		{"THING_SOMETHING", false},  // unrelated
		{"THING_CLIENT", false},     // another program's
		{"THING_CONFIG", false},     // the file's
		{"OTHER_NAME", false},       // not ours
	}
	for _, tt := range tests {
		var s settings
		l, err := newSet(&s).Load(nil, []string{tt.name + "="})
		if gotError := err != nil; gotError != tt.isError {
			t.Errorf("%s: got error %v, want an error: %v", tt.name, err, tt.isError)
			continue
		}
		if err != nil {
			continue
		}
		var want []string
		switch tt.name {
		case "THING_CLIENT", "THING_CONFIG", "OTHER_NAME":
		default:
			want = []string{tt.name} // for a warning
		}
		if !reflect.DeepEqual(l.UnknownEnv, want) {
			t.Errorf("%s: got unknown %q, want %q", tt.name, l.UnknownEnv, want)
		}
	}
}

func TestEditDistance(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"", "", 0},
		{"abc", "abc", 0},
		{"abc", "ab", 1},
		{"abc", "abd", 1},
		{"abc", "acb", 1},
		{"max_stages", "max-stages", 1},
		{"kitten", "sitting", 3},
		{"", "abc", 3},
	}
	for _, tt := range tests {
		if got := editDistance(tt.a, tt.b); got != tt.want {
			t.Errorf("editDistance(%q, %q): got %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0s", 24 * time.Hour: "24h", 90 * time.Minute: "1h30m", 15 * time.Second: "15s",
		time.Hour + time.Second: "1h0m1s", 1500 * time.Millisecond: "1.5s", 10 * time.Minute: "10m",
	} {
		if got := formatDuration(d); got != want {
			t.Errorf("formatDuration(%v): got %q, want %q", d, got, want)
		}
	}
}

// TestMisdefinedSet: two settings with one name are a mistake in the
// program, caught at once.
func TestMisdefinedSet(t *testing.T) {
	var a, b string
	set := &Set{EnvPrefix: "THING_", Settings: []Setting{
		{Flag: "a", Env: "THING_A", Value: String(&a, "")},
		{Flag: "b", Env: "THING_A", Value: String(&b, "")},
	}}
	defer func() {
		if recover() == nil {
			t.Error("no panic")
		}
	}()
	set.Reset()
}
