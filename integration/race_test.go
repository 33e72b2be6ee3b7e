//go:build integration && linux && race

package integration

// raceEnabled tells TestMain to build the daemon with -race too.
const raceEnabled = true
