package config

import (
	"bytes"
	"fmt"
	"io"
	"reflect"
	"strings"

	"github.com/BurntSushi/toml"
)

// fileHelp describes the flag that names the configuration file.
const fileHelp = "a TOML file of settings, read before the environment and the flags; a key that is no setting is an error"

// Usage writes the help: every flag with its variable, file key and
// built-in default. It shows neither what the environment or the file
// hold nor any secret, so that it is safe to paste anywhere.
func (s *Set) Usage(w io.Writer) {
	fmt.Fprintf(w, "Usage: %s [flags]\n\n", s.Command)
	if s.About != "" {
		fmt.Fprintf(w, "%s\n\n", s.About)
	}
	if s.FileFlag != "" {
		fmt.Fprintf(w, "  --%s file\n    \t%s", s.FileFlag, fileHelp)
		if s.FileEnv != "" {
			fmt.Fprintf(w, " (%s)", s.FileEnv)
		}
		fmt.Fprintln(w)
	}
	for _, st := range s.Settings {
		fmt.Fprintf(w, "  --%s", st.Flag)
		if !st.Value.isBool() {
			fmt.Fprintf(w, " %s", st.Value.typeName())
		}
		fmt.Fprintf(w, "\n    \t%s", st.Help)
		var notes []string
		if _, ok := st.Value.(*list); ok {
			notes = append(notes, "may be repeated")
		}
		if st.Env != "" {
			env := st.Env
			if _, ok := st.Value.(*list); ok {
				env += " comma-separated"
			}
			notes = append(notes, env)
		}
		if st.Key != "" {
			notes = append(notes, "file: "+st.Key)
		}
		if d := st.helpDefault(); d != "" {
			notes = append(notes, "default "+d)
		}
		if len(notes) > 0 {
			fmt.Fprintf(w, " (%s)", strings.Join(notes, "; "))
		}
		fmt.Fprintln(w)
	}
}

// helpDefault is the built-in default for the help, or "" if there is
// nothing worth saying (an empty string, false) or it is a secret.
func (st *Setting) helpDefault() string {
	switch {
	case st.Secret:
		return ""
	case st.Default != "":
		return st.Default
	}
	d := st.Value.defaultText()
	if d == "false" && st.Value.isBool() {
		return ""
	}
	return d
}

// Markdown returns the table of every setting, for the documentation.
func (s *Set) Markdown() string {
	var b strings.Builder
	b.WriteString("| flag | environment | file key | type | default | meaning |\n")
	b.WriteString("| --- | --- | --- | --- | --- | --- |\n")
	cell := func(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
	code := func(s string) string {
		if s == "" {
			return ""
		}
		return "`" + s + "`"
	}
	if s.FileFlag != "" {
		fmt.Fprintf(&b, "| `--%s` | %s | | file name | | %s |\n", s.FileFlag, code(s.FileEnv), cell(fileHelp))
	}
	for _, st := range s.Settings {
		flagCell, envCell, typ := code("--"+st.Flag), code(st.Env), st.Value.typeName()
		if _, ok := st.Value.(*list); ok {
			flagCell += " (repeatable)"
			if st.Env != "" {
				envCell += " (comma-separated)"
			}
			typ = "list of strings"
		}
		def := code(st.Value.defaultText())
		if st.Default != "" {
			def = cell(st.Default)
		}
		help := st.Help
		if st.Secret {
			def = ""
			help += "; a secret, never shown"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", flagCell, envCell, code(st.Key), typ, def, cell(help))
	}
	return b.String()
}

// WriteTOML writes the settings' current values as a configuration file
// that reads back to the same settings, each with where it came from.
// Secrets are left out, commented out if set, so that reading the output
// back never sets a placeholder as a secret; values with credentials
// redacted are marked.
func (s *Set) WriteTOML(w io.Writer, l *Loaded) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# The effective configuration of %s: defaults, then", s.Command)
	if l.File != "" {
		fmt.Fprintf(&b, " %s,", l.File)
	}
	fmt.Fprintf(&b, " %s* variables, then flags.\n", s.EnvPrefix)
	b.WriteString("# Secrets are not shown, nor credentials in URLs.\n")
	for _, st := range s.Settings {
		if st.Key == "" {
			continue
		}
		var notes []string
		if from := l.Source(st.Flag); from != "" {
			notes = append(notes, "from "+from)
		}
		if st.Secret && !st.Value.isZero() {
			fmt.Fprintf(&b, "# %s is set but secret", st.Key)
			if len(notes) > 0 {
				fmt.Fprintf(&b, " (%s)", strings.Join(notes, "; "))
			}
			b.WriteByte('\n')
			continue
		}
		value := st.Value.tomlValue(func(s string) string { return s })
		if st.Redact != nil {
			redacted := st.Value.tomlValue(st.Redact)
			if !reflect.DeepEqual(redacted, value) {
				notes = append(notes, "credentials redacted")
			}
			value = redacted
		}
		line, err := encodeKeyValue(st.Key, value)
		if err != nil {
			return fmt.Errorf("write %s: %w", st.Key, err)
		}
		b.WriteString(line)
		if len(notes) > 0 {
			fmt.Fprintf(&b, " # %s", strings.Join(notes, "; "))
		}
		b.WriteByte('\n')
	}
	_, err := w.Write(b.Bytes())
	return err
}

// encodeKeyValue writes key = value in TOML, quoting as TOML wants.
func encodeKeyValue(key string, value any) (string, error) {
	var b bytes.Buffer
	if err := toml.NewEncoder(&b).Encode(map[string]any{key: value}); err != nil {
		return "", err
	}
	return strings.TrimSuffix(b.String(), "\n"), nil
}
