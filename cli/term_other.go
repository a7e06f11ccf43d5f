//go:build !unix

package cli

// terminal reports whether stdout is a terminal, and its width: unknown
// here, so not one.
func terminal() (bool, int) { return false, 80 }
