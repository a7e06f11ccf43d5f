// Command ivsrt runs a self-hosted server that speaks the Amazon IVS
// Real-Time API, and talks to one.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/ivsrt/ivsrt/cli"
)

const usage = `ivsrt: a self-hosted server that speaks the Amazon IVS Real-Time API.

Usage:
  ivsrt serve [flags]     run the server (ivsrt serve -h lists the flags)
  ivsrt version           print the version

  ivsrt <command> [parameters]
                          the aws CLI's ivs-realtime commands against a server:
                          create-stage, get-stage, list-stages, create-participant-token,
                          list-participants, ... (ivsrt help lists them all)
  ivsrt bot [flags]       synthetic participants that publish and subscribe
  ivsrt drain             ask a running server to drain and stop, as SIGTERM does
  ivsrt backup [--data DIR] FILE
                          copy the SQLite database to FILE, while the server runs
  ivsrt completion bash|zsh
                          a shell completion script
`

// version is set at build time with -ldflags "-X main.version=...";
// otherwise the module's version and the commit come from the build
// information Go records (go install module@version records the version,
// a build in a checkout the commit).
var version = ""

// versionString returns the version, the commit and its time.
func versionString() string {
	v := version
	info, ok := debug.ReadBuildInfo()
	if !ok {
		if v == "" {
			v = "dev"
		}
		return v
	}
	if v == "" {
		v = info.Main.Version
		if v == "" || v == "(devel)" {
			v = "dev"
		}
	}
	var commit, at, dirty string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			commit = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = ", modified"
			}
		}
	}
	if commit != "" {
		v += " (commit " + commit[:min(12, len(commit))] + " " + at + dirty + ")"
	}
	return v + " " + info.GoVersion
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if args := os.Args[1:]; len(args) > 0 && isCLICommand(args[0]) {
		code := cli.Main(ctx, args, cli.StdIO())
		stop()
		os.Exit(code)
	}
	if err := run(ctx, os.Args[1:]); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "ivsrt:", err)
		}
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, usage)
		return flag.ErrHelp
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:])
	case "backup":
		return backup(ctx, args[1:], os.Stdout)
	case "version", "--version":
		fmt.Println("ivsrt", versionString())
		return nil
	case "-h", "--help":
		fmt.Print(usage)
		return nil
	}
	fmt.Fprint(os.Stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}

// isCLICommand reports whether the command line is one for the cli
// package: anything but serving and the version.
func isCLICommand(name string) bool {
	switch name {
	case "serve", "backup", "version", "--version", "-h", "--help":
		return false
	}
	return true
}

func serve(ctx context.Context, args []string) error {
	m := NewMain()
	if err := m.ParseFlags(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil // asked for: ParseFlags wrote the help
		}
		return err
	}
	if m.printConfig {
		return m.writeConfig(os.Stdout)
	}
	if err := m.Run(ctx); err != nil {
		m.Close()
		return err
	}
	select {
	case <-ctx.Done():
	case <-m.DrainRequested():
	}
	// A second signal stops at once: signal handling goes back to the
	// default, which ends the process.
	signal.Reset(os.Interrupt, syscall.SIGTERM)
	m.Logger.Info("shutting down: draining", "timeout", m.Config.DrainTimeout)
	m.Drain(context.Background())
	return m.Close()
}
