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
	// exits 0. Handling then goes back to the default, so a second signal
	// ends the process at once for an operator who will not wait.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	context.AfterFunc(ctx, stop)
	if err := cli.NewRoot(os.Stdout, os.Stderr).ExecuteContext(ctx); err != nil {
		if !cli.Reported(err) {
			fmt.Fprintln(os.Stderr, "kafka-proxy:", err)
		}
		os.Exit(1)
	}
}
