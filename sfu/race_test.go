//go:build race

package sfu_test

// raceEnabled tells tests that the race detector slows everything several
// times over: timings say nothing of the server then.
const raceEnabled = true
