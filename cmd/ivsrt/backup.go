package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/ivsrt/ivsrt/store/sqlite"
)

// backup copies the data folder's SQLite database with SQLite's online
// backup API: safe while a server uses it, unlike copying the file (whose
// write-ahead log holds the latest commits).
func backup(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("ivsrt backup", flag.ContinueOnError)
	fs.SetOutput(out)
	data := "./ivsrt-data"
	if v, ok := os.LookupEnv("IVSRT_DATA"); ok {
		data = v
	}
	fs.StringVar(&data, "data", data, "the server's data folder (IVSRT_DATA)")
	fs.Usage = func() {
		fmt.Fprintf(out, "usage: ivsrt backup [--data DIR] FILE\n\n"+
			"Copies the SQLite database of the data folder to FILE, which must not exist,\n"+
			"while the server goes on. Restore by stopping the server and putting FILE in\n"+
			"place of DIR/ivsrt.db (removing ivsrt.db-wal and ivsrt.db-shm). The keys beside\n"+
			"it (credentials.json, pagination.key, token-signing-key.pem) are plain files:\n"+
			"back them up once. A PostgreSQL store is backed up with pg_dump.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errors.New("backup: want one FILE to write")
	}
	src := filepath.Join(data, "ivsrt.db")
	if err := sqlite.Backup(ctx, src, fs.Arg(0)); err != nil {
		return err
	}
	fmt.Fprintf(out, "backed up %s to %s\n", src, fs.Arg(0))
	return nil
}
