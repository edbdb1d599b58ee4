package cli

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kafka-proxy/kafka-proxy/internal/auth"
	"github.com/kafka-proxy/kafka-proxy/internal/users"
)

// newUsersCmd manages the users file of --auth-local-users-file.
func newUsersCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "users",
		Short: "Manage the users file for local SASL (--auth-local-users-file): bcrypt and SCRAM credentials, never passwords",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newUsersAddCmd(), newUsersDeleteCmd(), newUsersListCmd())
	return cmd
}

func newUsersAddCmd() *cobra.Command {
	var file, user, passwordFile string
	kinds := slices.Clone(users.AllKinds)
	iterations := auth.DefaultScramIterations
	cost := users.DefaultBcryptCost
	cmd := &cobra.Command{
		Use:   "add --file FILE --user NAME [--password-file PATH]",
		Short: "Add a user, or replace its credentials; the password is read from --password-file or the first line of stdin",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			password, err := readPassword(cmd.InOrStdin(), passwordFile)
			if err != nil {
				return err
			}
			u, err := users.NewUser(user, password, kinds, iterations, cost)
			if err != nil {
				return err
			}
			all, err := users.ReadFile(file, true)
			if err != nil {
				return err
			}
			_, replaced := all[user]
			all[user] = u
			if err := users.WriteFile(file, all); err != nil {
				return err
			}
			verb := "added"
			if replaced {
				verb = "replaced"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s user %s (%s) in %s\n", verb, user, strings.Join(u.Kinds(), ", "), file)
			return nil
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&file, "file", "", "Users file (created if missing, written readable by its owner only)")
	fs.StringVar(&user, "user", "", "User name (the principal is User:<name>)")
	fs.StringVar(&passwordFile, "password-file", "", "Read the password from this file's first line instead of stdin")
	fs.StringSliceVar(&kinds, "mechanisms", kinds, "Credentials to store: plain (bcrypt), scram-sha-256, scram-sha-512")
	fs.IntVar(&iterations, "iterations", iterations, fmt.Sprintf("SCRAM iterations (%d to %d)", auth.MinScramIterations, users.MaxScramIterations))
	fs.IntVar(&cost, "bcrypt-cost", cost, "bcrypt cost for plain (4 to 31; each PLAIN authentication pays it)")
	_ = cmd.MarkFlagRequired("file")
	_ = cmd.MarkFlagRequired("user")
	return cmd
}

func newUsersDeleteCmd() *cobra.Command {
	var file, user string
	cmd := &cobra.Command{
		Use:   "delete --file FILE --user NAME",
		Short: "Delete a user",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			all, err := users.ReadFile(file, false)
			if err != nil {
				return err
			}
			if _, ok := all[user]; !ok {
				return fmt.Errorf("no user %q in %s", user, file)
			}
			delete(all, user)
			if err := users.WriteFile(file, all); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "deleted user %s from %s\n", user, file)
			return nil
		},
	}
	cmd.Flags().StringVar(&file, "file", "", "Users file")
	cmd.Flags().StringVar(&user, "user", "", "User name")
	_ = cmd.MarkFlagRequired("file")
	_ = cmd.MarkFlagRequired("user")
	return cmd
}

func newUsersListCmd() *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "list --file FILE",
		Short: "List the users and the credentials each holds",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			all, err := users.ReadFile(file, false)
			if err != nil {
				return err
			}
			names := make([]string, 0, len(all))
			for n := range all {
				names = append(names, n)
			}
			slices.Sort(names)
			for _, n := range names {
				fmt.Fprintf(cmd.OutOrStdout(), "%s\t%s\n", n, strings.Join(all[n].Kinds(), ","))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&file, "file", "", "Users file")
	_ = cmd.MarkFlagRequired("file")
	return cmd
}

// readPassword reads the first line of the password file, or of stdin.
func readPassword(stdin io.Reader, path string) (string, error) {
	src, what := stdin, "stdin"
	if path != "" {
		f, err := os.Open(path)
		if err != nil {
			return "", fmt.Errorf("password file: %w", err)
		}
		defer f.Close()
		src, what = f, path
	}
	line, err := bufio.NewReader(io.LimitReader(src, 4096)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read password from %s: %w", what, err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", fmt.Errorf("no password on the first line of %s", what)
	}
	return line, nil
}
