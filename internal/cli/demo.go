package cli

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/kafka-proxy/kafka-proxy/internal/config"
	"github.com/kafka-proxy/kafka-proxy/internal/memkafka"
	"github.com/kafka-proxy/kafka-proxy/internal/server"
)

// demoMode is one value of `demo --upstream-security`: how the in-memory
// brokers authenticate the proxy. Clients always speak plaintext to the
// proxy; the proxy owns the TLS material and SASL credentials.
type demoMode struct {
	name string
	mode memkafka.SecurityMode // 0: plaintext
	desc string
}

var demoModes = []demoMode{
	{"plaintext", 0, "plaintext, no authentication"},
	{"tls", memkafka.TLSOnly, "TLS; the proxy verifies the brokers against a demo CA"},
	{"mtls", memkafka.MTLS, "mutual TLS; the brokers require the proxy's client certificate"},
	{"sasl-plain", memkafka.SASLPlain, "SASL/PLAIN on plaintext"},
	{"sasl-plain-tls", memkafka.SASLPlainTLS, "SASL_SSL with PLAIN"},
	{"scram-sha-256", memkafka.SCRAM256, "SASL/SCRAM-SHA-256 on plaintext"},
	{"scram-sha-512", memkafka.SCRAM512, "SASL/SCRAM-SHA-512 on plaintext"},
	{"scram-sha-512-tls", memkafka.SCRAM512TLS, "SASL_SSL with SCRAM-SHA-512"},
	{"oauthbearer", memkafka.OAuthJWTFile, "SASL/OAUTHBEARER with JWTs the proxy reads from a token file"},
	{"oauthbearer-command", memkafka.OAuthJWTCommand, "SASL/OAUTHBEARER with JWTs printed by a token command"},
	{"msk-iam-oauthbearer", memkafka.MSKIAMOAuth, "SASL_SSL OAUTHBEARER with AWS MSK IAM tokens (a fake AWS identity)"},
	{"aws-msk-iam", memkafka.MSKIAM, "SASL_SSL AWS_MSK_IAM (a fake AWS identity)"},
}

func demoModeNames() []string {
	names := make([]string, len(demoModes))
	for i, m := range demoModes {
		names[i] = m.name
	}
	return names
}

func lookupDemoMode(name string) (demoMode, error) {
	for _, m := range demoModes {
		if strings.EqualFold(m.name, name) {
			return m, nil
		}
	}
	return demoMode{}, fmt.Errorf("--upstream-security %q: want one of %s", name, strings.Join(demoModeNames(), ", "))
}

// demoTokenTTL is the lifetime of the JWTs in the OAUTHBEARER modes; the
// demo rewrites the token file at half of it, as an identity provider
// would.
const demoTokenTTL = time.Hour

func newDemoCmd() *cobra.Command {
	var (
		listenIP        string
		port            int
		brokers         int
		httpAddr        string
		logLevel        string
		security        string
		sessionLifetime time.Duration
		reauthFloor     = config.Default().Kafka.ReauthMinLifetime
		localAuth       = config.Default().Auth.Local
		listenerTLS     = config.Default().Proxy.TLS
		sni             config.SNI
		admission       = config.Default().Proxy.Admission
		acls            = config.Default().ACL
		audit           = config.Default().Audit
	)
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Start an in-process 3-broker Kafka cluster and the proxy in front of it",
		Long: "demo starts an in-memory Kafka cluster (franz-go kfake) on 127.0.0.1 and kafka-proxy in front of\n" +
			"it, one listener per broker at --listen-ip:--port, --port+1, ... (--port 0: ports the kernel picks).\n" +
			"Point any Kafka client at the printed bootstrap server. Topic \"demo\" exists; other topics are\n" +
			"created on first use.\n\n" +
			"Clients speak plaintext to the proxy, or TLS with --proxy-listener-tls-*; --auth-local-* makes them\n" +
			"authenticate to it with SASL as `server` does (users from `kafka-proxy users add`); --acl-*,\n" +
			"--audit-*, --proxy-listener-allow/deny-cidr and --proxy-listener-max-connections* admit and authorize\n" +
			"them as `server` does; --sni-* (with a TLS listener) serves every broker on one port by SNI name.\n" +
			"--upstream-security makes the brokers demand TLS,\n" +
			"mTLS or SASL from the proxy instead (certificates, keys and tokens go to a temporary directory\n" +
			"removed on exit); --session-lifetime makes them expire SASL sessions, so the proxy re-authenticates\n" +
			"(KIP-368) while clients stay connected. On exit the demo prints what the brokers saw to stderr.\n\n" +
			"Modes:\n" + demoModeHelp(),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			mode, err := lookupDemoMode(security)
			if err != nil {
				return err
			}
			if sessionLifetime < 0 || reauthFloor < 0 {
				return fmt.Errorf("--session-lifetime and --kafka-reauth-min-lifetime must not be negative")
			}
			if sessionLifetime > 0 && mode.mode.SASLMechanism() == "" {
				return fmt.Errorf("--session-lifetime needs a SASL mode (--upstream-security %s has no SASL session to expire)", mode.name)
			}
			kopts := []kfake.Opt{kfake.SeedTopics(3, "demo"), kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(3)}
			cfg := config.Default()
			var secure *memkafka.SecureCluster
			var addrs []string
			if mode.mode == 0 {
				cluster, err := memkafka.NewCluster(append(kopts, kfake.NumBrokers(brokers))...)
				if err != nil {
					return fmt.Errorf("start demo cluster: %w", err)
				}
				defer cluster.Close()
				addrs = cluster.ListenAddrs()
			} else {
				dir, err := os.MkdirTemp("", "kafka-proxy-demo-")
				if err != nil {
					return err
				}
				defer os.RemoveAll(dir)
				opts := []memkafka.SecureOption{memkafka.WithBrokers(brokers), memkafka.WithKfakeOpts(kopts...),
					memkafka.WithTokenTTL(demoTokenTTL), memkafka.WithSessionLifetime(sessionLifetime),
					// The demo process is the proxy: the MSK modes point its
					// AWS credential chain at the fake identity.
					memkafka.WithSetenv(func(k, v string) { _ = os.Setenv(k, v) })}
				if secure, err = memkafka.NewSecureCluster(dir, mode.mode, opts...); err != nil {
					return fmt.Errorf("start demo cluster: %w", err)
				}
				defer secure.Close()
				addrs = secure.Addrs
				cfg.Kafka = secure.Kafka
				cfg.Kafka.ReauthMinLifetime = reauthFloor
			}
			for i, b := range addrs {
				p := 0
				if port != 0 {
					p = port + i
				}
				cfg.Proxy.BootstrapServers = append(cfg.Proxy.BootstrapServers, config.Mapping{Upstream: b, Listen: net.JoinHostPort(listenIP, strconv.Itoa(p))})
			}
			cfg.Proxy.DynamicListeners.DefaultListenerIP = listenIP
			cfg.HTTP.ListenAddress = httpAddr
			cfg.Log.Level = logLevel
			cfg.Proxy.DrainTimeout = 10 * time.Second
			cfg.Auth.Local = localAuth
			cfg.Proxy.TLS = listenerTLS
			cfg.Proxy.SNI = sni
			cfg.Proxy.Admission = admission // only the filter and limit flags are bound
			cfg.ACL, cfg.Audit = acls, audit
			if err := cfg.Validate(); err != nil {
				return err
			}
			ctx := cmd.Context()
			if secure != nil && secure.JWT != nil {
				go refreshDemoToken(ctx, secure, cmd.ErrOrStderr())
			}
			out := cmd.OutOrStdout()
			log := newLogger(cmd.ErrOrStderr(), cfg.Log)
			err = runProxy(ctx, cfg, log, func(srv *server.Server) {
				bootstrap := net.JoinHostPort(listenIP, strconv.Itoa(port))
				for _, l := range srv.Listeners() {
					if l.Upstream == addrs[0] {
						bootstrap = l.Addr.String()
					}
				}
				fmt.Fprintf(out, "kafka-proxy demo: %d-broker in-memory cluster at %s\n", brokers, strings.Join(addrs, ","))
				fmt.Fprintf(out, "kafka-proxy demo: upstream security %s: %s%s\n", mode.name, mode.desc, sessionNote(sessionLifetime))
				if sni.Enabled() {
					// Clients resolve the names to this listener (DNS or /etc/hosts).
					for _, l := range srv.Listeners() {
						if l.Upstream == "" {
							fmt.Fprintf(out, "kafka-proxy demo: SNI listener at %s for %s and %s\n", l.Addr, sni.BootstrapHost, sni.BrokerHostPattern)
							bootstrap = sniBootstrap(sni, l.Addr)
						}
					}
				}
				fmt.Fprintf(out, "proxy bootstrap server: %s\n", bootstrap)
				fmt.Fprintf(out, "try: kcat -b %s -L\n", bootstrap)
				fmt.Fprintf(out, "     echo hello | kcat -b %s -t demo -P && kcat -b %s -t demo -C -e\n", bootstrap, bootstrap)
				fmt.Fprintln(out, "press Ctrl-C to stop")
				fmt.Fprintln(out, "ready")
			}, nil)
			if secure != nil {
				printDemoStats(cmd.ErrOrStderr(), secure.Stats())
			}
			return err
		},
	}
	cmd.Flags().StringVar(&listenIP, "listen-ip", "127.0.0.1", "IP the proxy listens on and advertises")
	cmd.Flags().IntVar(&port, "port", 32400, "First proxy port; broker i gets port+i (0: ports the kernel picks)")
	cmd.Flags().IntVar(&brokers, "brokers", 3, "Number of brokers")
	cmd.Flags().StringVar(&httpAddr, "http-listen-address", "127.0.0.1:9080", "Address of the health and metrics endpoints")
	cmd.Flags().StringVar(&logLevel, "log-level", "info", "Log level")
	cmd.Flags().StringVar(&security, "upstream-security", "plaintext", "How the brokers authenticate the proxy: "+strings.Join(demoModeNames(), ", "))
	cmd.Flags().DurationVar(&sessionLifetime, "session-lifetime", 0, "SASL modes: the brokers expire sessions after this long (connections.max.reauth.ms), so the proxy re-authenticates (0: sessions never expire)")
	bindLocalAuthFlags(cmd.Flags(), &localAuth)
	bindListenerTLSFlags(cmd.Flags(), &listenerTLS)
	bindSNIFlags(cmd.Flags(), &sni)
	bindConnectionFilterFlags(cmd.Flags(), &admission)
	bindACLFlags(cmd.Flags(), &acls, &audit)
	cmd.Flags().DurationVar(&reauthFloor, "kafka-reauth-min-lifetime", reauthFloor, "Shortest interval between re-authentications of one broker connection; a shorter --session-lifetime is still renewed before it expires")
	return cmd
}

func demoModeHelp() string {
	var b strings.Builder
	for _, m := range demoModes {
		fmt.Fprintf(&b, "  %-20s %s\n", m.name, m.desc)
	}
	return b.String()
}

func sessionNote(lifetime time.Duration) string {
	if lifetime <= 0 {
		return ""
	}
	return fmt.Sprintf("; broker sessions expire after %v: the proxy re-authenticates (KIP-368)", lifetime)
}

// refreshDemoToken keeps the OAUTHBEARER token file valid for as long as
// the demo runs.
func refreshDemoToken(ctx context.Context, c *memkafka.SecureCluster, errOut io.Writer) {
	t := time.NewTicker(demoTokenTTL / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := c.WriteTokenFile("proxy-user", demoTokenTTL); err != nil {
				fmt.Fprintln(errOut, "kafka-proxy demo: refresh token:", err)
			}
		}
	}
}

// printDemoStats reports what the brokers saw, one key=value line, so the
// end-to-end suite can check that sessions were renewed, not expired.
func printDemoStats(w io.Writer, s memkafka.SecureStats) {
	fmt.Fprintf(w, "kafka-proxy demo: brokers saw connections=%d authenticated=%d reauthenticated=%d auth_failures=%d expired_closed=%d rejected=%d\n",
		s.Connections, s.Authenticated, s.Reauthenticated, s.AuthFailures, s.ExpiredClosed, s.Rejected)
}

// sniBootstrap is the bootstrap address clients use with SNI routing: the
// bootstrap name at the advertised port, else the listener's.
func sniBootstrap(c config.SNI, listener net.Addr) string {
	port := strconv.Itoa(c.AdvertisedPort)
	if c.AdvertisedPort == 0 {
		_, port, _ = net.SplitHostPort(listener.String())
	}
	return net.JoinHostPort(c.BootstrapHost, port)
}
