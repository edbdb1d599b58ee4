// Command kafka-proxy is a Kafka protocol proxy. See README.md.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/kafka-proxy/kafka-proxy/internal/cli"
)

func main() {
	// The first SIGINT or SIGTERM cancels ctx: the server stops accepting,
	// drains in-flight requests (bounded by --shutdown-drain-timeout) and
	// exits 0. Handling goes back to the default before ctx is cancelled,
	// so a second signal, even one sent as soon as the drain is logged,
	// ends the process at once for an operator who will not wait.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-signals
		signal.Stop(signals)
		cancel()
	}()
	if err := cli.NewRoot(os.Stdout, os.Stderr).ExecuteContext(ctx); err != nil {
		if !cli.Reported(err) {
			fmt.Fprintln(os.Stderr, "kafka-proxy:", err)
		}
		os.Exit(1)
	}
}
