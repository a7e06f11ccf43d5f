// Package config reads a command's settings from a table that defines
// each of them once: its flag, its environment variable, its key in a TOML
// configuration file, its type, default and help. Flags, variables, the
// file, the help text, the documentation and a printout of the effective
// configuration are all derived from that table, so that they cannot
// drift apart.
//
// A setting takes, in rising order of precedence, its default, the file's
// value, the variable's, the flag's.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/BurntSushi/toml"
)

// Setting is one row of the table.
type Setting struct {
	Flag  string // command-line flag, without dashes: "max-stages"
	Env   string // environment variable, or empty for none: "IVSRT_MAX_STAGES"
	Key   string // key in the configuration file, or empty for none: "max_stages"
	Value Value  // the destination, its type and default
	Help  string // what the setting does, for help and docs

	// Default, if set, describes the default for people in place of the
	// Value's own default: "http://LISTEN" when empty means derived.
	Default string
	// Secret settings are never shown: not in help, docs, printouts nor
	// error messages.
	Secret bool
	// Redact, if set, hides credentials inside a value that is otherwise
	// worth showing, such as the password in a database URL.
	Redact func(string) string
}

// Set is a command's table of settings.
type Set struct {
	Command   string // "ivsrt serve", for messages and help
	About     string // a paragraph for the help, after the usage line
	EnvPrefix string // environment variables with this prefix are checked: "IVSRT_"

	// FileFlag and FileEnv name the configuration file ("config",
	// "IVSRT_CONFIG"); the flag wins over the variable.
	FileFlag string
	FileEnv  string

	// OtherEnv are variables with EnvPrefix that are not settings but that
	// other programs (a client, the tests) read: never reported.
	OtherEnv []string

	Settings []Setting
}

// Loaded says where each setting's value came from.
type Loaded struct {
	File string // the configuration file read, or empty

	// UnknownEnv are variables with the prefix that are neither settings
	// nor OtherEnv, nor close enough to a setting's name to be taken for a
	// misspelling: the command may warn about them.
	UnknownEnv []string

	from map[string]string // flag name → file path, variable or --flag
}

// Source returns where the setting of the flag got its value: the file's
// path, the environment variable or "--flag"; empty for its default.
func (l *Loaded) Source(flagName string) string { return l.from[flagName] }

// Given reports whether the setting was given at all, in any source.
func (l *Loaded) Given(flagName string) bool { return l.from[flagName] != "" }

// Reset sets every setting to its default.
func (s *Set) Reset() {
	s.mustBeWellFormed()
	for _, st := range s.Settings {
		st.Value.reset()
	}
}

// Load reads the settings from the configuration file, the environment
// (as os.Environ gives it) and args, over the values the destinations
// hold (their defaults, after Reset). It returns flag.ErrHelp if args ask
// for help; the caller prints Usage. A bad flag's error ends with a hint
// at the help rather than the help itself, which would bury it.
func (s *Set) Load(args, environ []string) (*Loaded, error) {
	s.mustBeWellFormed()
	l := &Loaded{from: make(map[string]string)}

	// The flags are parsed first, to learn the file's name, but applied
	// last: they only record their arguments here.
	fs := flag.NewFlagSet(s.Command, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	var file string
	var fileFlagGiven bool
	if s.FileFlag != "" {
		fs.Func(s.FileFlag, "", func(v string) error {
			file, fileFlagGiven = v, true
			return nil
		})
	}
	flagArgs := make([]recordedFlag, len(s.Settings))
	for i := range s.Settings {
		flagArgs[i].setting = &s.Settings[i]
		fs.Var(&flagArgs[i], s.Settings[i].Flag, s.Settings[i].Help)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, fmt.Errorf("%w (%s -h lists the flags)", err, s.Command)
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q (%s -h lists the flags)", fs.Args(), s.Command)
	}

	env := make(map[string]string)
	for _, kv := range environ {
		if name, value, ok := strings.Cut(kv, "="); ok {
			env[name] = value
		}
	}
	if !fileFlagGiven && s.FileEnv != "" {
		file = env[s.FileEnv]
	}
	if file != "" {
		if err := s.loadFile(file, l); err != nil {
			return nil, err
		}
		l.File = file
	}
	if err := s.loadEnv(env, l); err != nil {
		return nil, err
	}
	for _, f := range flagArgs {
		if len(f.args) == 0 {
			continue
		}
		if err := f.setting.Value.setFlag(f.args); err != nil {
			// Parse has checked each argument already.
			return nil, fmt.Errorf("--%s: %w", f.setting.Flag, err)
		}
		l.from[f.setting.Flag] = "--" + f.setting.Flag
	}
	return l, nil
}

// recordedFlag is a setting's flag.Value while the flags are parsed: it
// checks each argument and keeps it for later.
type recordedFlag struct {
	setting *Setting
	args    []string
}

func (f *recordedFlag) String() string { return "" } // the help is written by Usage, not the flag package
func (f *recordedFlag) IsBoolFlag() bool {
	return f.setting != nil && f.setting.Value.isBool()
}

func (f *recordedFlag) Set(arg string) error {
	if err := f.setting.Value.check(arg); err != nil {
		return errors.New("want " + f.setting.Value.want())
	}
	f.args = append(f.args, arg)
	return nil
}

// loadFile reads the TOML file at path. A key that is no setting is an
// error, as is a value of the wrong type: either is a mistake that would
// otherwise pass unnoticed. All such mistakes are reported at once.
func (s *Set) loadFile(path string, l *Loaded) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read configuration file: %w", err)
	}
	var top map[string]toml.Primitive
	md, err := toml.Decode(string(data), &top)
	if err != nil {
		if pe, ok := errors.AsType[toml.ParseError](err); ok {
			return fmt.Errorf("%s:%d: %s", path, pe.Position.Line, pe.Message)
		}
		return fmt.Errorf("%s: %w", path, err)
	}
	var errs []error
	for _, st := range s.Settings {
		p, ok := top[st.Key]
		if st.Key == "" || !ok {
			continue
		}
		if err := st.Value.setFile(&md, p); err != nil {
			if errors.Is(err, errWrongType) {
				err = fmt.Errorf("not %s", tomlTypeName(md.Type(st.Key)))
			}
			if st.Secret {
				err = errors.New("a secret of the wrong type")
			}
			errs = append(errs, fmt.Errorf("%s: %s: want %s, %w", path, st.Key, st.Value.want(), err))
			continue
		}
		l.from[st.Flag] = path
	}
	// Every key not in the table is reported, in the file's order; for a
	// table or a dotted key, its first part says enough. (Decoded into a
	// map of Primitive, every top-level key counts as decoded, so
	// MetaData.Undecoded would not list them.)
	var keys []string
	for _, st := range s.Settings {
		if st.Key != "" {
			keys = append(keys, st.Key)
		}
	}
	reported := make(map[string]bool)
	for _, k := range md.Keys() {
		if name := k[0]; !reported[name] && !slices.Contains(keys, name) {
			reported[name] = true
			errs = append(errs, fmt.Errorf("%s: unknown key %q%s", path, name, didYouMean(name, keys)))
		}
	}
	return errors.Join(errs...)
}

// tomlTypeName turns the decoder's name of a TOML type into words.
func tomlTypeName(t string) string {
	switch t {
	case "Integer":
		return "an integer"
	case "Array":
		return "an array"
	case "ArrayHash":
		return "an array of tables"
	case "Hash":
		return "a table"
	case "":
		return "a value"
	}
	return "a " + strings.ToLower(t) // string, float, bool, datetime
}

// loadEnv reads the settings' variables. A variable with the prefix that
// is no setting but looks like a misspelt one is an error; others are
// listed in l.UnknownEnv, since the prefix is shared with programs that
// read variables of their own.
func (s *Set) loadEnv(env map[string]string, l *Loaded) error {
	var errs []error
	known := map[string]bool{s.FileEnv: true}
	var settingEnv []string
	for _, st := range s.Settings {
		if st.Env == "" {
			continue
		}
		known[st.Env] = true
		settingEnv = append(settingEnv, st.Env)
		text, ok := env[st.Env]
		if !ok {
			continue
		}
		if err := st.Value.setText(text); err != nil {
			if st.Secret {
				errs = append(errs, fmt.Errorf("%s: want %s", st.Env, st.Value.want()))
			} else {
				errs = append(errs, fmt.Errorf("%s=%q: want %s", st.Env, text, st.Value.want()))
			}
			continue
		}
		l.from[st.Flag] = st.Env
	}
	for _, name := range s.OtherEnv {
		known[name] = true
	}
	var names []string
	for name := range env {
		if s.EnvPrefix != "" && strings.HasPrefix(name, s.EnvPrefix) && !known[name] {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	// Names are compared without the prefix, which all share.
	var suffixes []string
	for _, name := range settingEnv {
		suffixes = append(suffixes, strings.TrimPrefix(name, s.EnvPrefix))
	}
	for _, name := range names {
		meant := closest(strings.TrimPrefix(name, s.EnvPrefix), suffixes)
		if meant != "" && !extendsAny(name, settingEnv) {
			errs = append(errs, fmt.Errorf("%s is not a setting of %s, did you mean %s?", name, s.Command, s.EnvPrefix+meant))
			continue
		}
		l.UnknownEnv = append(l.UnknownEnv, name)
	}
	return errors.Join(errs...)
}

// extendsAny reports whether name is one of names followed by "_" and
// more, as IVSRT_WEBHOOK_SECRET_BILLING: a name of its own, made on
// purpose (a sink's secretEnv, say), not a misspelling.
func extendsAny(name string, names []string) bool {
	for _, n := range names {
		if strings.HasPrefix(name, n+"_") {
			return true
		}
	}
	return false
}

// mustBeWellFormed panics if two settings share a name: a mistake in
// the table, not in what a user gave.
func (s *Set) mustBeWellFormed() {
	seen := map[string]bool{"--" + s.FileFlag: s.FileFlag != "", s.FileEnv: s.FileEnv != ""}
	for _, st := range s.Settings {
		if st.Flag == "" || st.Value == nil {
			panic(fmt.Sprintf("config: setting %q has no flag or no value", st.Flag+st.Env+st.Key))
		}
		for _, name := range []string{"--" + st.Flag, st.Env, "key " + st.Key} {
			if name == "" || name == "key " {
				continue
			}
			if seen[name] {
				panic("config: two settings named " + name)
			}
			seen[name] = true
		}
		if st.Env != "" && !strings.HasPrefix(st.Env, s.EnvPrefix) {
			panic(fmt.Sprintf("config: %s lacks the prefix %s", st.Env, s.EnvPrefix))
		}
	}
}
