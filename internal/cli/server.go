package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"

	"github.com/kafka-proxy/kafka-proxy/internal/admin"
	"github.com/kafka-proxy/kafka-proxy/internal/config"
	"github.com/kafka-proxy/kafka-proxy/internal/metrics"
	"github.com/kafka-proxy/kafka-proxy/internal/server"
	"github.com/kafka-proxy/kafka-proxy/internal/status"
)

func newServerCmd(run runFunc) *cobra.Command {
	cfg := config.Default()
	var file string
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the kafka-proxy server",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			final, err := resolveConfig(cmd, file, cfg)
			logCfg := final.Log
			if logCfg.Format == "" { // the file did not load: the flags' settings
				logCfg = cfg.Log
			}
			if err != nil {
				return reportStartup(cmd.ErrOrStderr(), logCfg, err)
			}
			log, level := newLevelLogger(cmd.ErrOrStderr(), final.Log)
			rl := &reloader{level: level}
			if file != "" {
				rl.file = file
				rl.load = func() (config.Config, error) { return resolveConfig(cmd, file, cfg) }
			}
			return reportStartup(cmd.ErrOrStderr(), logCfg, run(cmd.Context(), final, log, rl))
		},
	}
	cmd.Flags().StringVar(&file, "config", "", "YAML configuration file; flags given on the command line override it")
	bindServerFlags(cmd.Flags(), &cfg)
	// A bad flag, in JSON mode if the flags before it asked for it.
	cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return reportStartup(c.ErrOrStderr(), cfg.Log, err) })
	return cmd
}

func newValidateCmd() *cobra.Command {
	cfg := config.Default()
	var file string
	cmd := &cobra.Command{
		Use:   "validate",
		Short: "Check a configuration (file and flags) and print the problems found",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			final, err := resolveConfig(cmd, file, cfg)
			if err != nil {
				return err
			}
			for _, w := range final.Warnings() {
				fmt.Fprintln(cmd.OutOrStdout(), "warning:", w)
			}
			// What server checks before it listens, every problem at once.
			if problems := server.Check(final); len(problems) > 0 {
				for _, p := range problems {
					fmt.Fprintln(cmd.ErrOrStderr(), "problem:", p)
				}
				if len(problems) == 1 {
					return errors.New("the configuration has a problem (above)")
				}
				return fmt.Errorf("the configuration has %d problems (above)", len(problems))
			}
			fmt.Fprintln(cmd.OutOrStdout(), "configuration is valid")
			return nil
		},
	}
	cmd.Flags().StringVar(&file, "config", "", "YAML configuration file; flags given on the command line override it")
	bindServerFlags(cmd.Flags(), &cfg)
	return cmd
}

// newConfigCmd prints the effective configuration (flags over the file
// over the defaults) as the YAML --config reads, secrets redacted.
func newConfigCmd() *cobra.Command {
	cfg := config.Default()
	var file string
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Print the effective configuration (the file, the flags over it, the defaults) as YAML, secrets redacted",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			final, err := resolveConfig(cmd, file, cfg)
			if err != nil {
				return err
			}
			fmt.Fprint(cmd.OutOrStdout(), final.Redacted().YAML())
			return nil
		},
	}
	cmd.Flags().StringVar(&file, "config", "", "YAML configuration file; flags given on the command line override it")
	bindServerFlags(cmd.Flags(), &cfg)
	return cmd
}

// resolveConfig applies the YAML file (if any) under the command-line
// flags and validates the result.
func resolveConfig(cmd *cobra.Command, file string, fromFlags config.Config) (config.Config, error) {
	cfg := fromFlags
	if file != "" {
		var err error
		if cfg, err = config.Load(file); err != nil {
			return cfg, err
		}
		if err := overlayFlags(cmd.Flags(), &cfg); err != nil {
			return cfg, err
		}
	}
	return cfg, cfg.Validate()
}

// newRegistry holds every metric the binary exports: the proxy's, the Go
// runtime's and the process's.
func newRegistry() (*prometheus.Registry, *metrics.Metrics) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := metrics.New(reg)
	m.SetVersion(Version)
	return reg, m
}

// runProxy runs the proxy and its HTTP endpoints until ctx ends, then
// drains. started, if set, is told the server once it listens.
func runProxy(ctx context.Context, cfg config.Config, log *slog.Logger, started func(*server.Server), rl *reloader) error {
	// Libraries that log through slog's or the log package's default (the
	// AWS SDK, via upstream) then write in the configured format.
	slog.SetDefault(log)
	reg, m := newRegistry()
	srv, err := server.New(cfg, log, m)
	if err != nil {
		return err
	}
	if rl != nil && rl.load != nil {
		current := cfg
		srv.OnHangup(func() { current = rl.apply(srv, current, log) })
	}
	if err := srv.Start(); err != nil {
		return err
	}
	var https []*admin.Server
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for _, h := range https {
			_ = h.Shutdown(sctx)
		}
	}()
	if !cfg.HTTP.Disable {
		page := status.Handler(status.Source{Version: Version, Started: time.Now(), Gatherer: reg,
			Brokers: srv.StatusBrokers, Config: cfg.Redacted().YAML()})
		h, err := admin.Start(cfg.HTTP.ListenAddress, admin.Handler(cfg.HTTP, reg, srv.Ready, page), log)
		if err != nil {
			_ = srv.Shutdown(context.Background())
			return err
		}
		https = append(https, h)
		log.Info("http endpoints", "listen", h.Addr().String(), "health", cfg.HTTP.HealthPath, "ready", cfg.HTTP.ReadyPath, "metrics", cfg.HTTP.MetricsPath)
	}
	if cfg.Debug.Enable {
		h, err := admin.Start(cfg.Debug.ListenAddress, admin.PprofHandler(), log)
		if err != nil {
			_ = srv.Shutdown(context.Background())
			return err
		}
		https = append(https, h)
	}
	if started != nil {
		started(srv)
	}
	log.Info("kafka-proxy started", "version", Version)
	// Say when the signal arrived: the drain can take a while, and an
	// operator watching the log should see why the proxy is still there.
	stop := context.AfterFunc(ctx, func() {
		log.Info("shutting down: stopped accepting, draining in-flight requests", "drain_timeout", cfg.Proxy.DrainTimeout)
	})
	defer stop()
	err = srv.Serve(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		log.Warn("shutdown: drain timeout reached, closed remaining connections", "drain_timeout", cfg.Proxy.DrainTimeout)
		return nil
	}
	log.Info("kafka-proxy stopped")
	return err
}
