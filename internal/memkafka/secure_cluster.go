package memkafka

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/kafka-proxy/kafka-proxy/internal/auth"
	"github.com/kafka-proxy/kafka-proxy/internal/certs"
	"github.com/kafka-proxy/kafka-proxy/internal/config"
	"github.com/kafka-proxy/kafka-proxy/internal/tlsconf"
)

// SecurityMode is how a test cluster's brokers authenticate clients, one
// per kind of cluster kafka-proxy meets in the field.
type SecurityMode int

const (
	// TLSOnly: brokers serve TLS (certificate from an intermediate CA);
	// the proxy verifies them against the root.
	TLSOnly SecurityMode = iota + 1
	// MTLS: TLS with ssl.client.auth=required; the proxy's client
	// certificate comes from the intermediate CA (self-run KRaft, Aiven,
	// Strimzi).
	MTLS
	// SASLPlain: SASL/PLAIN on plaintext.
	SASLPlain
	// SASLPlainTLS: SASL_SSL with PLAIN (Aiven's SASL port).
	SASLPlainTLS
	// SCRAM256 and SCRAM512: SASL/SCRAM on plaintext.
	SCRAM256
	SCRAM512
	// SCRAM512TLS: SASL_SSL with SCRAM-SHA-512.
	SCRAM512TLS
	// OAuthJWTFile: OAUTHBEARER with ES256 JWTs, token read from a file.
	OAuthJWTFile
	// OAuthJWTCommand: OAUTHBEARER with JWTs printed by a token command.
	OAuthJWTCommand
	// MSKIAMOAuth: OAUTHBEARER over TLS with MSK IAM tokens signed by
	// aws-msk-iam-sasl-signer-go (credentials from the environment).
	MSKIAMOAuth
	// MSKIAM: the AWS_MSK_IAM mechanism over TLS (franz-go sasl/aws).
	MSKIAM
	// GSSAPI: Kerberos, with the service keytab WithKeytab gives (a KDC
	// is needed, so it is not in SecurityModes).
	GSSAPI
)

var modeNames = map[SecurityMode]string{
	TLSOnly: "TLS", MTLS: "mTLS", SASLPlain: "SASL-PLAIN", SASLPlainTLS: "SASL_SSL-PLAIN",
	SCRAM256: "SCRAM-SHA-256", SCRAM512: "SCRAM-SHA-512", SCRAM512TLS: "SASL_SSL-SCRAM-SHA-512",
	OAuthJWTFile: "OAUTHBEARER-JWT-file", OAuthJWTCommand: "OAUTHBEARER-JWT-command",
	MSKIAMOAuth: "OAUTHBEARER-MSK-IAM", MSKIAM: "AWS_MSK_IAM", GSSAPI: "GSSAPI",
}

func (m SecurityMode) String() string {
	if n, ok := modeNames[m]; ok {
		return n
	}
	return "SecurityMode(" + strconv.Itoa(int(m)) + ")"
}

// SecurityModes lists every mode, for table tests.
var SecurityModes = []SecurityMode{TLSOnly, MTLS, SASLPlain, SASLPlainTLS, SCRAM256, SCRAM512, SCRAM512TLS, OAuthJWTFile, OAuthJWTCommand, MSKIAMOAuth, MSKIAM}

// TLS reports whether brokers in mode serve TLS.
func (m SecurityMode) TLS() bool {
	switch m {
	case TLSOnly, MTLS, SASLPlainTLS, SCRAM512TLS, MSKIAMOAuth, MSKIAM:
		return true
	}
	return false
}

// SASLMechanism is the mode's SASL mechanism, or "".
func (m SecurityMode) SASLMechanism() string {
	switch m {
	case SASLPlain, SASLPlainTLS:
		return config.MechanismPlain
	case SCRAM256:
		return config.MechanismScram256
	case SCRAM512, SCRAM512TLS:
		return config.MechanismScram512
	case OAuthJWTFile, OAuthJWTCommand, MSKIAMOAuth:
		return config.MechanismOAuthBearer
	case MSKIAM:
		return config.MechanismAWSMSKIAM
	case GSSAPI:
		return config.MechanismGSSAPI
	}
	return ""
}

type secureOpts struct {
	brokers       int
	lifetime      time.Duration
	closeAtExpiry bool
	tokenTTL      time.Duration
	keyFormat     certs.KeyFormat
	keyPassword   string
	kfake         []kfake.Opt
	setenv        func(key, value string)
	keytab        string
}

// WithKeytab is the brokers' service keytab for the GSSAPI mode.
func WithKeytab(path string) SecureOption { return func(o *secureOpts) { o.keytab = path } }

// SecureOption tunes NewSecureCluster (and kafkatest.StartSecureCluster).
type SecureOption func(*secureOpts)

// WithBrokers sets the number of brokers (default 3).
func WithBrokers(n int) SecureOption { return func(o *secureOpts) { o.brokers = n } }

// WithSessionLifetime makes brokers announce this SASL session lifetime
// (connections.max.reauth.ms) and close connections whose session expired.
func WithSessionLifetime(d time.Duration) SecureOption {
	return func(o *secureOpts) { o.lifetime = d }
}

// WithExpiryAtDeadline closes a connection the moment its session expires
// instead of at its next request (Apache Kafka's behaviour, the default).
func WithExpiryAtDeadline() SecureOption { return func(o *secureOpts) { o.closeAtExpiry = true } }

// WithTokenTTL sets the lifetime of the JWTs the kit writes (default 1h).
func WithTokenTTL(d time.Duration) SecureOption { return func(o *secureOpts) { o.tokenTTL = d } }

// WithClientKeyPassword writes the mTLS client key encrypted in format.
func WithClientKeyPassword(format certs.KeyFormat, password string) SecureOption {
	return func(o *secureOpts) { o.keyFormat, o.keyPassword = format, password }
}

// WithKfakeOpts passes extra options to kfake (topics, ACLs, ...).
func WithKfakeOpts(opts ...kfake.Opt) SecureOption {
	return func(o *secureOpts) { o.kfake = append(o.kfake, opts...) }
}

// WithSetenv is how the MSK modes give the AWS credential chain of the
// process (the proxy's, in tests the test's) the kit's test identity:
// kafkatest.StartSecureCluster uses t.Setenv, which restores the environment when
// the test ends; a process that runs nothing but a demo may pass a
// wrapper of os.Setenv. Without it NewSecureCluster refuses the MSK modes
// rather than change the environment behind its caller's back.
func WithSetenv(fn func(key, value string)) SecureOption {
	return func(o *secureOpts) { o.setenv = fn }
}

// SecureCluster is a running kfake cluster in one security mode, with the
// broker-side configuration the proxy needs to reach it.
type SecureCluster struct {
	*kfake.Cluster
	Mode SecurityMode
	// Kafka is config.Default().Kafka with TLS and SASL filled in (files
	// under Dir), ready for upstream.New. Its re-authentication floor is
	// lowered to 1s so tests can use short session lifetimes.
	Kafka config.Kafka
	// Addrs are the brokers' addresses (also what Metadata advertises).
	Addrs []string
	Dir   string
	// Root signs Intermediate, which signs the broker and client certs.
	Root, Intermediate *certs.Authority
	// User and Password are the SASL credentials (PLAIN/SCRAM modes).
	User, Password string
	// JWT signs OAUTHBEARER tokens for the JWT modes.
	JWT *JWTIssuer
	// TokenFile is the JWT file the proxy reads (OAuthJWT* modes).
	TokenFile string
	// ClientCert and ClientKey are the mTLS files (MTLS mode).
	ClientCert, ClientKey string
	// SessionLifetime is the SASL session lifetime the brokers enforce
	// (0: sessions do not expire).
	SessionLifetime time.Duration

	front     *front
	closeOnce sync.Once
}

// NewSecureCluster starts a cluster in mode, outside tests too (the demo
// runs one). It writes certificates, keys and tokens under dir, which the
// caller owns and removes after Close. The MSK modes need WithSetenv.
func NewSecureCluster(dir string, mode SecurityMode, opts ...SecureOption) (*SecureCluster, error) {
	o := secureOpts{brokers: 3, tokenTTL: time.Hour}
	for _, fn := range opts {
		fn(&o)
	}
	if _, ok := modeNames[mode]; !ok {
		return nil, fmt.Errorf("memkafka: unknown security mode %d", int(mode))
	}
	c := &SecureCluster{Mode: mode, Dir: dir, Kafka: config.Default().Kafka}
	f := &front{closeAtExpiry: o.closeAtExpiry}
	c.front = f
	kopts := []kfake.Opt{kfake.NumBrokers(o.brokers), kfake.ListenFn(f.listen)}

	if mode.TLS() {
		if err := c.setupTLS(f, mode == MTLS, o); err != nil {
			return nil, fmt.Errorf("memkafka: %s certificates: %w", mode, err)
		}
	}
	mech := mode.SASLMechanism()
	if mech != "" {
		c.Kafka.SASL.Enable = true
		c.Kafka.SASL.Method = mech
		c.SessionLifetime = o.lifetime
	}
	var m auth.Mechanism
	switch mode {
	case SASLPlain, SASLPlainTLS:
		c.User, c.Password = "proxy-user", "pw-"+randHex(12)
		m = auth.NewPlain(password{c.User, c.Password})
	case SCRAM256, SCRAM512, SCRAM512TLS:
		c.User, c.Password = "proxy-user", "pw-"+randHex(12)
		creds, err := auth.NewScramCredentials(mech, c.Password, auth.DefaultScramIterations)
		if err != nil {
			return nil, err
		}
		if m, err = auth.NewScram(mech, scramUser{c.User, creds}); err != nil {
			return nil, err
		}
	case OAuthJWTFile, OAuthJWTCommand:
		jwt, err := NewJWTIssuer()
		if err != nil {
			return nil, err
		}
		c.JWT = jwt
		c.TokenFile = filepath.Join(c.Dir, "token.jwt")
		if _, err := c.WriteTokenFile("proxy-user", o.tokenTTL); err != nil {
			return nil, err
		}
		if mode == OAuthJWTFile {
			c.Kafka.SASL.OAuth.TokenFile = c.TokenFile
		} else {
			c.Kafka.SASL.OAuth.TokenCommand = "cat " + c.TokenFile
		}
		m = auth.NewOAuthBearer(tokenFunc(func(tok string) (string, time.Time, error) { return jwt.Verify(tok, time.Now()) }))
	case MSKIAMOAuth, MSKIAM:
		if o.setenv == nil {
			return nil, fmt.Errorf("memkafka: %s mode sets AWS_* environment variables for the proxy's credential chain: use kafkatest.StartSecureCluster or pass WithSetenv", mode)
		}
		setAWSEnv(o.setenv)
		c.Kafka.SASL.AWS.Region = TestAWSRegion
		secrets := map[string]string{TestAWSAccessKeyID: TestAWSSecretAccessKey}
		if mode == MSKIAMOAuth {
			m = auth.NewOAuthBearer(tokenFunc(func(tok string) (string, time.Time, error) {
				return verifyMSKIAMToken(tok, secrets, time.Now())
			}))
		} else {
			m = mskIAMMechanism{secrets}
		}
	case GSSAPI:
		kt, err := keytab.Load(o.keytab)
		if err != nil {
			return nil, fmt.Errorf("memkafka: GSSAPI needs the brokers' keytab (WithKeytab): %w", err)
		}
		m = gssapiMechanism{kt}
	}
	if m != nil {
		c.Kafka.SASL.Username, c.Kafka.SASL.Password = c.User, c.Password
		f.sasl = &auth.Config{Mechanisms: []auth.Mechanism{m}, SessionLifetime: o.lifetime}
	}
	kc, err := kfake.NewCluster(append(kopts, o.kfake...)...)
	if err != nil {
		return nil, fmt.Errorf("memkafka: start %s cluster: %w", mode, err)
	}
	c.Cluster = kc
	c.Addrs = kc.ListenAddrs()
	return c, nil
}

// Close stops the brokers; it may be called more than once. Files under
// Dir stay (their owner removes Dir).
func (c *SecureCluster) Close() {
	c.closeOnce.Do(c.Cluster.Close)
}

// setupTLS issues root → intermediate → broker (and client) certificates
// and points the proxy's TLS config at them.
func (c *SecureCluster) setupTLS(f *front, mutual bool, o secureOpts) error {
	var err error
	if c.Root, err = certs.NewRoot("memkafka root CA", certs.Options{}); err != nil {
		return err
	}
	if c.Intermediate, err = c.Root.NewIntermediate("memkafka intermediate CA", certs.Options{}); err != nil {
		return err
	}
	server, err := c.Intermediate.IssueServer("memkafka broker", []string{"127.0.0.1", "localhost"}, certs.Options{})
	if err != nil {
		return err
	}
	caFile, err := c.Root.WriteCert(c.Dir, "ca", false)
	if err != nil {
		return err
	}
	var clientCAs *x509.CertPool
	if mutual {
		clientCAs = x509.NewCertPool()
		clientCAs.AddCert(c.Root.Cert)
		files, err := c.WriteClientCert("kafka-proxy", certs.Options{}, o.keyFormat, o.keyPassword)
		if err != nil {
			return err
		}
		c.ClientCert, c.ClientKey = files.Cert, files.Key
		c.Kafka.TLS.ClientCertFile, c.Kafka.TLS.ClientKeyFile = files.Cert, files.Key
		c.Kafka.TLS.ClientKeyPassword = o.keyPassword
	}
	f.tls = tlsconf.NewServerConfig(server.TLSCertificate(), clientCAs, tls.VersionTLS12, nil)
	c.Kafka.TLS.Enable = true
	c.Kafka.TLS.CAChainCertFile = caFile
	return nil
}

// WriteClientCert issues a client certificate from the intermediate CA and
// writes it (with the intermediate) and its key under Dir, named after cn.
func (c *SecureCluster) WriteClientCert(cn string, o certs.Options, format certs.KeyFormat, password string) (certs.Files, error) {
	if c.Intermediate == nil {
		return certs.Files{}, fmt.Errorf("memkafka: %s cluster has no CA", c.Mode)
	}
	client, err := c.Intermediate.IssueClient(cn, o)
	if err != nil {
		return certs.Files{}, err
	}
	return client.WriteFiles(c.Dir, "client-"+cn+"-"+randHex(4), format, []byte(password))
}

// WriteTokenFile atomically (re)writes TokenFile with a JWT for subject
// valid for ttl and returns the token.
func (c *SecureCluster) WriteTokenFile(subject string, ttl time.Duration) (string, error) {
	if c.JWT == nil {
		return "", fmt.Errorf("memkafka: %s cluster has no JWT issuer", c.Mode)
	}
	tok := c.JWT.Issue(subject, ttl)
	tmp := c.TokenFile + ".tmp"
	if err := os.WriteFile(tmp, []byte(tok+"\n"), 0o600); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, c.TokenFile); err != nil {
		return "", err
	}
	return tok, nil
}

// Stats returns what the brokers' fronts have counted so far.
func (c *SecureCluster) Stats() SecureStats {
	c.front.mu.Lock()
	defer c.front.mu.Unlock()
	return c.front.stats
}

// setAWSEnv gives the default AWS credential chain the test identity and
// keeps it away from the machine's real AWS configuration and IMDS.
func setAWSEnv(setenv func(key, value string)) {
	setenv("AWS_ACCESS_KEY_ID", TestAWSAccessKeyID)
	setenv("AWS_SECRET_ACCESS_KEY", TestAWSSecretAccessKey)
	setenv("AWS_SESSION_TOKEN", "")
	setenv("AWS_REGION", TestAWSRegion)
	setenv("AWS_PROFILE", "")
	setenv("AWS_CONFIG_FILE", filepath.Join(os.TempDir(), "memkafka-no-aws-config"))
	setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(os.TempDir(), "memkafka-no-aws-credentials"))
	setenv("AWS_EC2_METADATA_DISABLED", "true")
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
