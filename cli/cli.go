// Package cli is the ivsrt command line for the Amazon IVS Real-Time API:
// the aws CLI's ivs-realtime commands, with its names, flags, shorthand
// syntax, output formats, pagination and error messages, calling a server
// through the AWS SDK; and bots, synthetic participants that publish and
// subscribe.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

// Exit statuses, as the aws CLI (version 2) has them.
const (
	ExitOK          = 0
	ExitUsage       = 252 // the command line is wrong
	ExitConfig      = 253 // the environment or configuration is wrong (no credentials)
	ExitService     = 254 // the server answered with an error
	ExitOther       = 255 // anything else: the server could not be reached
	ExitInterrupted = 130
)

// globals are the options every command takes, anywhere on the line.
type globals struct {
	output         string
	outputGiven    bool // --output or AWS_DEFAULT_OUTPUT was given
	endpointURL    string
	region         string
	profile        string
	color          string
	query          string
	caBundle       string
	noPaginate     bool
	debug          bool
	noVerifySSL    bool
	noSignRequest  bool
	readTimeout    time.Duration
	connectTimeout time.Duration
}

// IO is where a command reads and writes, and its environment.
type IO struct {
	Stdout, Stderr io.Writer
	Getenv         func(string) string
	// Terminal reports whether stdout is a terminal and its width, for
	// the table output and the bot's live display.
	Terminal func() (isTerminal bool, width int)
}

// StdIO is the process's own.
func StdIO() IO {
	return IO{Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv, Terminal: terminal}
}

// Commands lists the API commands, for the program's usage.
func Commands() []string {
	var out []string
	for _, op := range modelOperations {
		out = append(out, commandName(op.Name))
	}
	return out
}

// Main runs one command (args without the program name) and returns the
// exit status.
func Main(ctx context.Context, args []string, io IO) int {
	if io.Getenv == nil {
		io.Getenv = os.Getenv
	}
	if io.Terminal == nil {
		io.Terminal = func() (bool, int) { return false, 80 }
	}
	g, rest, err := parseGlobals(args, io.Getenv)
	if err != nil {
		return fail(io, err)
	}
	if len(rest) > 0 && rest[0] == "ivs-realtime" { // pasted from an aws command
		rest = rest[1:]
	}
	if len(rest) == 0 {
		fmt.Fprint(io.Stderr, usage())
		return ExitUsage
	}
	cmd, cmdArgs := rest[0], rest[1:]
	switch cmd {
	case "help", "--help", "-h":
		fmt.Fprint(io.Stdout, usage())
		return ExitOK
	case "completion":
		return completion(cmdArgs, io)
	case "bot":
		return runBot(ctx, g, cmdArgs, io)
	case "drain":
		return runDrain(ctx, g, cmdArgs, io)
	}
	op := operationByCommand(cmd)
	if op == nil {
		return fail(io, usageErrorf("argument command: Invalid choice: '%s'; valid choices are: %s", cmd, strings.Join(Commands(), ", ")))
	}
	if len(cmdArgs) > 0 && cmdArgs[0] == "help" {
		cmdArgs = []string{"--help"}
	}
	ca, err := parseCommandArgs(op, cmdArgs)
	if err != nil {
		return fail(io, err)
	}
	if ca.help {
		fmt.Fprint(io.Stdout, commandHelp(op))
		return ExitOK
	}
	if ca.skeleton != "" {
		name := op.Input
		if ca.skeleton == "output" {
			name = op.Output
		}
		writeJSON(io.Stdout, skeleton(shapeOf(name), 0))
		return ExitOK
	}
	if g.query != "" {
		return fail(io, usageErrorf("--query is not supported by ivsrt; pipe the json output to jq instead"))
	}
	if err := runOperation(ctx, g, op, ca, io); err != nil {
		return fail(io, err)
	}
	return ExitOK
}

// runOperation calls op and prints its response.
func runOperation(ctx context.Context, g *globals, op *operation, ca *commandArgs, io IO) error {
	client, err := newClient(g, io.Getenv, io.Stderr)
	if err != nil {
		return err
	}
	if err := checkCredentials(ctx, client.Options().Credentials); err != nil {
		return err
	}
	_, paginated := paginators[op.Name]
	if paginated && !ca.page.manual && !g.noPaginate {
		pages, resume, err := paginate(ctx, client, op, ca.input, ca.page)
		if err != nil {
			return err
		}
		if g.output == "text" {
			for _, p := range pages {
				if err := writeText(io.Stdout, p); err != nil {
					return err
				}
			}
			if resume != "" {
				o, inner := newObject(), newObject()
				inner.set("NextToken", resume)
				o.set("NextToken", inner)
				return writeText(io.Stdout, o)
			}
			return nil
		}
		return printResponse(g, op, fullResult(op, pages, resume), io)
	}
	if paginated && g.noPaginate && (ca.page.startingToken != "" || ca.page.pageSize != 0 || ca.page.maxItems != 0) {
		return usageErrorf("Cannot specify --no-paginate along with pagination arguments: --starting-token, --page-size, --max-items")
	}
	v, err := call(ctx, client, op, ca.input)
	if err != nil {
		return err
	}
	return printResponse(g, op, shapeOutput(shapeOf(op.Output), v), io)
}

func printResponse(g *globals, op *operation, v any, io IO) error {
	switch g.output {
	case "text":
		return writeText(io.Stdout, v)
	case "table":
		isTerm, width := io.Terminal()
		color := g.color == "on" || g.color == "auto" && isTerm
		if !isTerm {
			width = 80
		}
		return writeTable(io.Stdout, op.Name, v, width, color)
	}
	return writeJSON(io.Stdout, v)
}

// fail prints err as the aws CLI does and returns its exit status.
func fail(io IO, err error) int {
	var (
		ue *usageError
		se *serviceError
		ce *configError
	)
	switch {
	case errors.As(err, &ue):
		if strings.HasPrefix(ue.msg, "the following arguments are required") || strings.HasPrefix(ue.msg, "argument ") ||
			strings.HasPrefix(ue.msg, "Unknown options") {
			fmt.Fprintf(io.Stderr, "usage: ivsrt [options] <command> [parameters]\nTo see help text, you can run:\n\n"+
				"  ivsrt help\n  ivsrt <command> help\n\nivsrt: error: %s\n", ue.msg)
		} else {
			fmt.Fprintf(io.Stderr, "\n%s\n", ue.msg)
		}
		return ExitUsage
	case errors.As(err, &se):
		fmt.Fprintf(io.Stderr, "\n%s\n", se)
		return ExitService
	case errors.As(err, &ce):
		fmt.Fprintf(io.Stderr, "\n%s\n", ce.msg)
		return ExitConfig
	case errors.Is(err, context.Canceled):
		fmt.Fprintln(io.Stderr)
		return ExitInterrupted
	}
	fmt.Fprintf(io.Stderr, "\n%v\n", err)
	return ExitOther
}

// parseGlobals takes the global options out of args, wherever they are.
func parseGlobals(args []string, env func(string) string) (*globals, []string, error) {
	g := &globals{output: env("AWS_DEFAULT_OUTPUT"), color: "auto", readTimeout: 60 * time.Second, connectTimeout: 60 * time.Second}
	g.outputGiven = g.output != ""
	if g.output == "" {
		g.output = "json"
	}
	var rest []string
	for i := 0; i < len(args); i++ {
		name, inline, hasInline := strings.Cut(args[i], "=")
		value := func() (string, error) {
			if hasInline {
				return inline, nil
			}
			if i+1 >= len(args) {
				return "", usageErrorf("argument %s: expected one argument", name)
			}
			i++
			return args[i], nil
		}
		var err error
		var v string
		switch name {
		case "--output":
			if v, err = value(); err == nil {
				if v != "json" && v != "text" && v != "table" {
					err = usageErrorf("argument --output: Invalid choice, valid choices are:\n\njson                                     | text\ntable")
				}
				g.output, g.outputGiven = v, true
			}
		case "--endpoint-url":
			g.endpointURL, err = value()
		case "--region":
			g.region, err = value()
		case "--profile":
			g.profile, err = value()
		case "--query":
			g.query, err = value()
		case "--ca-bundle":
			g.caBundle, err = value()
		case "--color":
			if v, err = value(); err == nil {
				if v != "on" && v != "off" && v != "auto" {
					err = usageErrorf("argument --color: invalid choice: '%s' (choose from 'on', 'off', 'auto')", v)
				}
				g.color = v
			}
		case "--cli-read-timeout", "--cli-connect-timeout":
			if v, err = value(); err == nil {
				n, perr := strconv.Atoi(v)
				if perr != nil || n < 0 {
					err = usageErrorf("argument %s: invalid int value: '%s'", name, v)
				}
				d := time.Duration(n) * time.Second // 0: no timeout
				if name == "--cli-read-timeout" {
					g.readTimeout = d
				} else {
					g.connectTimeout = d
				}
			}
		case "--no-paginate":
			g.noPaginate = true
		case "--debug":
			g.debug = true
		case "--no-verify-ssl":
			g.noVerifySSL = true
		case "--no-sign-request":
			g.noSignRequest = true
		case "--no-cli-pager", "--no-cli-auto-prompt":
		default:
			rest = append(rest, args[i])
		}
		if err != nil {
			return nil, nil, err
		}
	}
	return g, rest, nil
}

// skeleton is the --generate-cli-skeleton of a shape: every member with
// an empty value of its type.
func skeleton(s *shape, depth int) any {
	switch s.Type {
	case "structure":
		o := newObject()
		if depth > 5 {
			return o
		}
		for _, m := range s.Members {
			o.set(m.Name, skeleton(shapeOf(m.Shape), depth+1))
		}
		return o
	case "list":
		return []any{skeleton(shapeOf(s.Member), depth+1)}
	case "map":
		o := newObject()
		o.set("KeyName", skeleton(shapeOf(s.Value), depth+1))
		return o
	case "integer", "long":
		return 0
	case "float", "double":
		return pyFloat(0)
	case "boolean":
		return true
	case "timestamp":
		return "1970-01-01T00:00:00"
	}
	if len(s.Enum) > 0 {
		return s.Enum[0]
	}
	return ""
}
