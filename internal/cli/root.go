// Package cli builds the kafka-proxy command line: server, demo, validate
// and version. Flags map onto internal/config; nothing else imports cli.
package cli

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

// Version is set at build time with -ldflags "-X ...cli.Version=...".
var Version = "dev"

// NewRoot returns the kafka-proxy command tree writing to out and errOut.
func NewRoot(out, errOut io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "kafka-proxy",
		Short:         "A Kafka protocol proxy: clients speak plain Kafka to it; it owns the brokers' addresses, TLS and SASL",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(out)
	root.SetErr(errOut)
	root.AddCommand(newServerCmd(), newDemoCmd(), newValidateCmd(), &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintln(cmd.OutOrStdout(), "kafka-proxy", Version)
		},
	})
	return root
}
