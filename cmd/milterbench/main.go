// Command milterbench measures a milter from outside, the way an MTA uses
// it: "run" drives concurrent milter sessions and reports throughput,
// latency percentiles and verdicts; "dns" serves generated DNSBL zones with
// configurable delay and loss; "null" is a do-nothing milter, the baseline.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	code := runCLI(ctx, os.Args[1:], cliEnv{stdout: os.Stdout, stderr: os.Stderr, usr1: usr1})
	stop()
	os.Exit(code)
}
