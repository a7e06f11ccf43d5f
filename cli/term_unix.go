//go:build unix

package cli

import (
	"os"

	"golang.org/x/sys/unix"
)

// terminal reports whether stdout is a terminal, and its width.
func terminal() (bool, int) {
	ws, err := unix.IoctlGetWinsize(int(os.Stdout.Fd()), unix.TIOCGWINSZ)
	if err != nil || ws.Col == 0 {
		return false, 80
	}
	return true, int(ws.Col)
}
