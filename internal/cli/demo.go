package cli

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/kafka-proxy/kafka-proxy/internal/config"
	"github.com/kafka-proxy/kafka-proxy/internal/kafkatest"
	"github.com/kafka-proxy/kafka-proxy/internal/server"
)

func newDemoCmd() *cobra.Command {
	var (
		listenIP string
		port     int
		brokers  int
		httpAddr string
		logLevel string
	)
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Start an in-process 3-broker Kafka cluster and the proxy in front of it",
		Long: "demo starts an in-memory Kafka cluster (franz-go kfake) on 127.0.0.1 and kafka-proxy in front of\n" +
			"it, one listener per broker at --listen-ip:--port, --port+1, ... Point any Kafka client at the\n" +
			"printed bootstrap server. Topic \"demo\" exists; other topics are created on first use.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cluster, err := kafkatest.NewCluster(kfake.NumBrokers(brokers), kfake.SeedTopics(3, "demo"), kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(3))
			if err != nil {
				return fmt.Errorf("start demo cluster: %w", err)
			}
			defer cluster.Close()
			cfg := config.Default()
			for i, b := range cluster.ListenAddrs() {
				local := net.JoinHostPort(listenIP, strconv.Itoa(port+i))
				cfg.Proxy.BootstrapServers = append(cfg.Proxy.BootstrapServers, config.Mapping{Upstream: b, Listen: local})
			}
			cfg.Proxy.DynamicListeners.DefaultListenerIP = listenIP
			cfg.HTTP.ListenAddress = httpAddr
			cfg.Log.Level = logLevel
			cfg.Proxy.DrainTimeout = 10 * time.Second
			if err := cfg.Validate(); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			bootstrap := net.JoinHostPort(listenIP, strconv.Itoa(port))
			log := newLogger(cmd.ErrOrStderr(), cfg.Log)
			return runProxy(cmd.Context(), cfg, log, func(*server.Server) {
				fmt.Fprintf(out, "kafka-proxy demo: %d-broker in-memory cluster at %s\n", brokers, strings.Join(cluster.ListenAddrs(), ","))
				fmt.Fprintf(out, "proxy bootstrap server: %s\n", bootstrap)
				fmt.Fprintf(out, "try: kcat -b %s -L\n", bootstrap)
				fmt.Fprintf(out, "     echo hello | kcat -b %s -t demo -P && kcat -b %s -t demo -C -e\n", bootstrap, bootstrap)
				fmt.Fprintln(out, "press Ctrl-C to stop")
				fmt.Fprintln(out, "ready")
			})
		},
	}
	cmd.Flags().StringVar(&listenIP, "listen-ip", "127.0.0.1", "IP the proxy listens on and advertises")
	cmd.Flags().IntVar(&port, "port", 32400, "First proxy port; broker i gets port+i")
	cmd.Flags().IntVar(&brokers, "brokers", 3, "Number of brokers")
	cmd.Flags().StringVar(&httpAddr, "http-listen-address", "127.0.0.1:9080", "Address of the health and metrics endpoints")
	cmd.Flags().StringVar(&logLevel, "log-level", "info", "Log level")
	return cmd
}
