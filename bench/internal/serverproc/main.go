package serverproc

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/ivsrt/ivsrt/bench/internal/procstat"
)

// Main is a benchmark's main: it runs run with the command's arguments
// until it returns or the benchmark is interrupted (Ctrl-C, SIGTERM),
// kills what was started and still runs, and on an error other than
// -help prints it after name and exits 1.
func Main(name string, run func(ctx context.Context, args []string) error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	KillAll()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, name+":", err)
		os.Exit(1)
	}
}

// Defaults fills in what a benchmark's --server and --out flags leave
// empty, from the module it runs in: the server binary, built into dir,
// and the report's path, bench/results/<today>/<report>. The module is
// needed only for what is to be filled in.
func Defaults(ctx context.Context, dir string, server, out *string, report string) error {
	root, rootErr := procstat.ModuleRoot()
	if *server == "" {
		if rootErr != nil {
			return rootErr
		}
		fmt.Fprintln(os.Stderr, "building ivsrt")
		bin, err := procstat.BuildServer(ctx, root, dir)
		if err != nil {
			return err
		}
		*server = bin
	}
	if *out == "" {
		if rootErr != nil {
			return rootErr
		}
		*out = filepath.Join(root, "bench", "results", time.Now().Format("2006-01-02"), report)
	}
	return nil
}
