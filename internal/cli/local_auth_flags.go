package cli

import (
	"github.com/spf13/pflag"

	"github.com/kafka-proxy/kafka-proxy/internal/config"
)

// bindLocalAuthFlags defines the local SASL flags (drop-in names).
func bindLocalAuthFlags(fs *pflag.FlagSet, l *config.LocalAuth) {
	fs.BoolVar(&l.Enable, "auth-local-enable", l.Enable, "Enable local SASL authentication: clients authenticate to the proxy before anything is forwarded")
	fs.StringSliceVar(&l.Mechanisms, "auth-local-mechanism", l.Mechanisms, "SASL mechanisms offered to clients, comma separated: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512")
	fs.DurationVar(&l.SessionLifetime, "auth-local-session-lifetime", l.SessionLifetime, "Client SASL session lifetime (Kafka's connections.max.reauth.ms): clients re-authenticate within it or are closed (0: no expiry)")
	fs.StringVar(&l.UsersFile, "auth-local-users-file", l.UsersFile, "Users `FILE` for local SASL, written by kafka-proxy users add; changes apply without a restart")
}
