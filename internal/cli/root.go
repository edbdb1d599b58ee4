// Package cli builds the kafka-proxy command line: server, demo, validate
// users and version. Flags map onto internal/config; nothing else imports cli.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/kafka-proxy/kafka-proxy/internal/config"
)

// Version is set at build time with -ldflags "-X ...cli.Version=...".
var Version = "dev"

// NewRoot returns the kafka-proxy command tree writing to out and errOut.
func NewRoot(out, errOut io.Writer) *cobra.Command {
	return newRoot(out, errOut, func(ctx context.Context, cfg config.Config, log *slog.Logger, rl *reloader) error {
		return runProxy(ctx, cfg, log, nil, rl)
	})
}

// Reported tells main that err was already written to the log (JSON
// mode), so it only exits non-zero instead of printing it as text.
func Reported(err error) bool { return errors.Is(err, errReported) }

// runFunc runs the proxy with the resolved, validated configuration.
// rl reloads the configuration file on SIGHUP (nil or without a file:
// nothing to reload).
type runFunc func(ctx context.Context, cfg config.Config, log *slog.Logger, rl *reloader) error

// newRoot is NewRoot with the proxy itself injected, so tests can check
// where every flag and YAML key lands without starting listeners.
func newRoot(out, errOut io.Writer, run runFunc) *cobra.Command {
	root := &cobra.Command{
		Use:           "kafka-proxy",
		Short:         "A Kafka protocol proxy: clients speak plain Kafka to it; it owns the brokers' addresses, TLS and SASL",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(out)
	root.SetErr(errOut)
	root.AddCommand(newServerCmd(run), newDemoCmd(), newValidateCmd(), newConfigCmd(), newUsersCmd(), newCertsCmd(), &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintln(cmd.OutOrStdout(), "kafka-proxy", Version)
		},
	})
	return root
}
