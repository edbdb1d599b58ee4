package cli

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kafka-proxy/kafka-proxy/internal/certs"
	"github.com/kafka-proxy/kafka-proxy/internal/tlsconf"
)

// certFlags are the flags every certs subcommand shares.
type certFlags struct {
	out, name               string
	cn                      string
	org, ou                 []string
	days                    int
	keyType                 string
	keyPasswordFile         string
	storePasswordFile       string
	caCert, caKey, caKeyPwd string
	force                   bool
}

func newCertsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "certs",
		Short: "Create a PKI for Kafka: root and intermediate CAs, server and client certificates, PEM and PKCS#12",
		Long: `Create the certificates a Kafka deployment with TLS and mTLS needs:

  kafka-proxy certs ca --out pki                      root CA: ca.crt, ca.key, truststore.p12
  kafka-proxy certs intermediate --ca-cert pki/ca.crt --ca-key pki/ca.key --out pki --name kafka-ca
  kafka-proxy certs server --ca-cert pki/kafka-ca.crt --ca-key pki/kafka-ca.key --out pki \
      --name broker --dns kafka-0.example.com,kafka-1.example.com --ip 10.0.0.5
  kafka-proxy certs client --ca-cert pki/kafka-ca.crt --ca-key pki/kafka-ca.key --out pki \
      --cn orders --o Acme --ou Payments

Each certificate is written as NAME.crt (it and its intermediates, what a TLS peer sends),
NAME-fullchain.crt (up to the root) and NAME.key (mode 0600; encrypted PKCS#8 with
--key-password-file). With --store-password-file, a server or client certificate is also written
as NAME.p12, a PKCS#12 keystore for Java clients and brokers, and every command writes
truststore.p12 with the root CA (password "changeit", Java's default, without the flag). A CA
certificate file may hold the CA's issuers after it, so that what it issues carries them.
Existing files are not overwritten without --force.`,
	}
	cmd.AddCommand(certCmd("ca", "Create a self-signed root CA", false, false),
		certCmd("intermediate", "Create an intermediate CA signed by --ca-cert/--ca-key", true, false),
		certCmd("server", "Create a server certificate (brokers, the proxy's listeners) signed by --ca-cert/--ca-key", true, true),
		certCmd("client", "Create a client certificate (mTLS; its subject is the Kafka principal) signed by --ca-cert/--ca-key", true, false))
	return cmd
}

func certCmd(kind, short string, signed, server bool) *cobra.Command {
	var f certFlags
	var dns, ips []string
	cmd := &cobra.Command{
		Use:   kind,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return f.run(cmd, kind, dns, ips)
		},
	}
	fs := cmd.Flags()
	defaults := map[string][2]string{ // name, common name
		"ca": {"ca", "kafka-proxy root CA"}, "intermediate": {"intermediate", "kafka-proxy intermediate CA"},
		"server": {"server", ""}, "client": {"", ""},
	}[kind]
	fs.StringVar(&f.out, "out", ".", "Directory the files are written to")
	fs.StringVar(&f.name, "name", defaults[0], "File name stem: NAME.crt, NAME.key, ... (client: default the CN)")
	fs.StringVar(&f.cn, "cn", defaults[1], "Subject common name (client: the Kafka user; server: default the first --dns)")
	fs.StringSliceVar(&f.org, "o", nil, "Subject organization (O), repeatable")
	fs.StringSliceVar(&f.ou, "ou", nil, "Subject organizational unit (OU), repeatable")
	days := map[string]int{"ca": 3650, "intermediate": 1825, "server": 397, "client": 397}[kind]
	fs.IntVar(&f.days, "days", days, "Validity in days")
	fs.StringVar(&f.keyType, "key-type", "ecdsa", "Key type: ecdsa (P-256) or rsa (2048 bits, for old clients)")
	fs.StringVar(&f.keyPasswordFile, "key-password-file", "", "Encrypt the key (PKCS#8, AES-256) with the password in this file")
	fs.StringVar(&f.storePasswordFile, "store-password-file", "", "Password of the PKCS#12 keystore and truststore (without it: no keystore, and truststore.p12 with \"changeit\")")
	fs.BoolVar(&f.force, "force", false, "Overwrite existing files")
	if signed {
		fs.StringVar(&f.caCert, "ca-cert", "", "Issuing CA's certificate (PEM; its issuers may follow)")
		fs.StringVar(&f.caKey, "ca-key", "", "Issuing CA's key (PEM)")
		fs.StringVar(&f.caKeyPwd, "ca-key-password-file", "", "File with the password of an encrypted --ca-key")
		_ = cmd.MarkFlagRequired("ca-cert")
		_ = cmd.MarkFlagRequired("ca-key")
	}
	if server {
		fs.StringSliceVar(&dns, "dns", nil, "DNS names of the server (subject alternative names), comma separated; every broker name clients use")
		fs.StringSliceVar(&ips, "ip", nil, "IP addresses of the server (subject alternative names), comma separated")
	}
	return cmd
}

func readPasswordFile(path string) ([]byte, error) {
	if path == "" {
		return nil, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	p := bytes.TrimRight(data, "\r\n")
	if len(p) == 0 {
		return nil, fmt.Errorf("%s is empty", path)
	}
	return p, nil
}

func (f *certFlags) options() (certs.Options, error) {
	o := certs.Options{NotAfter: time.Now().Add(time.Duration(f.days) * 24 * time.Hour)}
	if f.days <= 0 {
		return o, errors.New("--days must be positive")
	}
	switch f.keyType {
	case "ecdsa":
		o.KeyType = certs.ECDSAP256
	case "rsa":
		o.KeyType = certs.RSA2048
	default:
		return o, fmt.Errorf("--key-type %q: want ecdsa or rsa", f.keyType)
	}
	o.Subject = &pkix.Name{CommonName: f.cn, Organization: f.org, OrganizationalUnit: f.ou}
	return o, nil
}

func (f *certFlags) run(cmd *cobra.Command, kind string, dns, ips []string) error {
	if kind == "server" && f.cn == "" && len(dns) > 0 {
		f.cn = dns[0]
	}
	if kind == "server" && len(dns)+len(ips) == 0 {
		return errors.New("a server certificate needs --dns or --ip: clients check the name they connect to")
	}
	if f.cn == "" {
		return errors.New("--cn is required")
	}
	if f.name == "" {
		f.name = f.cn
	}
	if strings.ContainsAny(f.name, `/\`) {
		return fmt.Errorf("--name %q: a file name stem, without a directory (see --out)", f.name)
	}
	o, err := f.options()
	if err != nil {
		return err
	}
	keyPassword, err := readPasswordFile(f.keyPasswordFile)
	if err != nil {
		return fmt.Errorf("--key-password-file: %w", err)
	}
	storePassword, err := readPasswordFile(f.storePasswordFile)
	if err != nil {
		return fmt.Errorf("--store-password-file: %w", err)
	}
	var ca *certs.Authority
	if f.caCert != "" {
		certPEM, err := os.ReadFile(f.caCert)
		if err != nil {
			return fmt.Errorf("--ca-cert: %w", err)
		}
		keyPEM, err := os.ReadFile(f.caKey)
		if err != nil {
			return fmt.Errorf("--ca-key: %w", err)
		}
		pw, err := readPasswordFile(f.caKeyPwd)
		if err != nil {
			return fmt.Errorf("--ca-key-password-file: %w", err)
		}
		if ca, err = loadAuthority(certPEM, keyPEM, pw); err != nil {
			return fmt.Errorf("--ca-cert/--ca-key: %w", err)
		}
	}

	files := map[string][]byte{}
	var order []string
	add := func(name string, data []byte) {
		files[name] = data
		order = append(order, name)
	}
	var root *x509.Certificate
	switch kind {
	case "ca", "intermediate":
		var a *certs.Authority
		if kind == "ca" {
			a, err = certs.NewRoot(f.cn, o)
		} else {
			a, err = ca.NewIntermediate(f.cn, o)
		}
		if err != nil {
			return err
		}
		root = a.Root().Cert
		key, err := a.KeyPEM(keyPassword)
		if err != nil {
			return err
		}
		add(f.name+".crt", a.ChainPEM())
		add(f.name+".key", key)
	case "server", "client":
		var leaf *certs.Issued
		if kind == "server" {
			leaf, err = ca.IssueServer(f.cn, append(append([]string{}, dns...), ips...), o)
		} else {
			leaf, err = ca.IssueClient(f.cn, o)
		}
		if err != nil {
			return err
		}
		root = ca.Root().Cert
		key, err := leaf.EncryptedKeyPEM(certs.PKCS8, keyPassword)
		if err != nil {
			return err
		}
		add(f.name+".crt", leaf.ChainPEM())
		add(f.name+"-fullchain.crt", append(leaf.ChainPEM(), certs.EncodeCerts(root)...))
		add(f.name+".key", key)
		if storePassword != nil {
			ks, err := leaf.KeyStore(string(storePassword))
			if err != nil {
				return fmt.Errorf("keystore: %w", err)
			}
			add(f.name+".p12", ks)
		}
	}
	trustPassword := "changeit"
	if storePassword != nil {
		trustPassword = string(storePassword)
	}
	ts, err := certs.TrustStore(trustPassword, root)
	if err != nil {
		return fmt.Errorf("truststore: %w", err)
	}
	add("truststore.p12", ts)

	if err := os.MkdirAll(f.out, 0o755); err != nil {
		return err
	}
	if !f.force {
		for _, name := range order {
			if _, err := os.Stat(filepath.Join(f.out, name)); err == nil && name != "truststore.p12" {
				return fmt.Errorf("%s exists: choose another --name or --out, or --force", filepath.Join(f.out, name))
			}
		}
	}
	for _, name := range order {
		mode := os.FileMode(0o644)
		if strings.HasSuffix(name, ".key") || strings.HasSuffix(name, ".p12") && name != "truststore.p12" {
			mode = 0o600
		}
		path := filepath.Join(f.out, name)
		if err := os.WriteFile(path, files[name], mode); err != nil {
			return err
		}
		if err := os.Chmod(path, mode); err != nil { // WriteFile keeps an existing file's mode
			return err
		}
		fmt.Fprintln(cmd.OutOrStdout(), "wrote", path)
	}
	return nil
}

// loadAuthority is a CA from its PEM files: certPEM holds the CA's
// certificate first, then any issuers up to the root (so certificates it
// issues carry their intermediates); keyPEM its key, encrypted or not.
func loadAuthority(certPEM, keyPEM, password []byte) (*certs.Authority, error) {
	var chain []*x509.Certificate
	for rest := certPEM; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("CA certificate: %w", err)
		}
		chain = append(chain, c)
	}
	if len(chain) == 0 {
		return nil, errors.New("no CERTIFICATE in the CA certificate file")
	}
	if !chain[0].IsCA {
		return nil, fmt.Errorf("%q is not a CA certificate", chain[0].Subject.String())
	}
	key, err := tlsconf.ParsePrivateKeyPEM(keyPEM, password)
	if err != nil {
		return nil, fmt.Errorf("CA key: %w", err)
	}
	if !publicKeysEqual(chain[0].PublicKey, key.Public()) {
		return nil, errors.New("the CA key does not belong to the CA certificate")
	}
	var parent *certs.Authority
	for i := len(chain) - 1; i >= 1; i-- {
		parent = &certs.Authority{Cert: chain[i], Parent: parent}
	}
	return &certs.Authority{Cert: chain[0], Key: key, Parent: parent}, nil
}

func publicKeysEqual(a, b any) bool {
	ea, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && ea.Equal(b)
}
