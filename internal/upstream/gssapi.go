package upstream

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"

	krbclient "github.com/jcmturner/gokrb5/v8/client"
	krbconfig "github.com/jcmturner/gokrb5/v8/config"
	"github.com/jcmturner/gokrb5/v8/gssapi"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/spnego"
	"github.com/jcmturner/gokrb5/v8/types"
	"github.com/twmb/franz-go/pkg/sasl"

	"github.com/kafka-proxy/kafka-proxy/internal/config"
)

// gssapiMechanism is Kafka's SASL/GSSAPI (RFC 4752) towards the brokers:
// a Kerberos login (keytab or password), a service ticket for
// ServiceName/<broker host>, the AP-REQ, then the security-layer
// negotiation, where the proxy chooses no layer (TLS protects the
// connection, as Kafka clients do).
type gssapiMechanism struct {
	cfg  config.GSSAPI
	krb5 *krbconfig.Config
	kt   *keytab.Keytab // auth type KEYTAB
}

func newGSSAPI(cfg config.GSSAPI) (*gssapiMechanism, error) {
	krb5, err := krbconfig.Load(cfg.KerberosConfigPath)
	if err != nil {
		return nil, fmt.Errorf("--gssapi-krb5 %s: %w", cfg.KerberosConfigPath, err)
	}
	m := &gssapiMechanism{cfg: cfg, krb5: krb5}
	if strings.EqualFold(cfg.AuthType, "KEYTAB") {
		if m.kt, err = keytab.Load(cfg.KeytabPath); err != nil {
			return nil, fmt.Errorf("--gssapi-keytab %s: %w", cfg.KeytabPath, err)
		}
	}
	return m, nil
}

func (*gssapiMechanism) Name() string { return config.MechanismGSSAPI }

func (m *gssapiMechanism) client() *krbclient.Client {
	opt := krbclient.DisablePAFXFAST(m.cfg.DisablePAFXFAST)
	if m.kt != nil {
		return krbclient.NewWithKeytab(m.cfg.Username, m.cfg.Realm, m.kt, m.krb5, opt)
	}
	return krbclient.NewWithPassword(m.cfg.Username, m.cfg.Realm, m.cfg.Password, m.krb5, opt)
}

// spn is the service principal of broker: --gssapi-servicename and the
// broker's host, or the host --gssapi-spn-host-mapping names for it.
func (m *gssapiMechanism) spn(broker string) string {
	host, _, err := net.SplitHostPort(broker)
	if err != nil {
		host = broker
	}
	if h := m.cfg.SPNHostsMapping[host]; h != "" {
		host = h
	}
	return m.cfg.ServiceName + "/" + host
}

// Authenticate logs in (every time: a (re-)authentication gets fresh
// tickets) and returns the AP-REQ token.
func (m *gssapiMechanism) Authenticate(_ context.Context, broker string) (sasl.Session, []byte, error) {
	cl := m.client()
	if err := cl.Login(); err != nil {
		return nil, nil, fmt.Errorf("kerberos login as %s@%s: %w", m.cfg.Username, m.cfg.Realm, err)
	}
	spn := m.spn(broker)
	tkt, key, err := cl.GetServiceTicket(spn)
	if err != nil {
		cl.Destroy()
		return nil, nil, fmt.Errorf("kerberos service ticket for %s: %w", spn, err)
	}
	tok, err := spnego.NewKRB5TokenAPREQ(cl, tkt, key, []int{gssapi.ContextFlagInteg, gssapi.ContextFlagConf}, nil)
	cl.Destroy()
	if err != nil {
		return nil, nil, fmt.Errorf("kerberos AP-REQ for %s: %w", spn, err)
	}
	first, err := tok.Marshal()
	if err != nil {
		return nil, nil, err
	}
	return &gssapiSession{key: key}, first, nil
}

// gssapiSession answers the broker's security-layer offer.
type gssapiSession struct {
	key types.EncryptionKey
}

// noSecurityLayer is RFC 4752's bit for "no security layer".
const noSecurityLayer = 0x01

func (s *gssapiSession) Challenge(offer []byte) (bool, []byte, error) {
	var wt gssapi.WrapToken
	if err := wt.Unmarshal(offer, true); err != nil {
		return false, nil, fmt.Errorf("gssapi: the broker's security layer offer: %w", err)
	}
	if ok, err := wt.Verify(s.key, keyusage.GSSAPI_ACCEPTOR_SEAL); !ok {
		return false, nil, fmt.Errorf("gssapi: the broker's security layer offer does not verify: %v", err)
	}
	if len(wt.Payload) != 4 {
		return false, nil, fmt.Errorf("gssapi: a security layer offer of %d bytes, want 4", len(wt.Payload))
	}
	if wt.Payload[0]&noSecurityLayer == 0 {
		return false, nil, errors.New("gssapi: the broker requires a security layer; Kafka brokers offer none")
	}
	reply, err := gssapi.NewInitiatorWrapToken([]byte{noSecurityLayer, 0, 0, 0}, s.key)
	if err != nil {
		return false, nil, err
	}
	b, err := reply.Marshal()
	return true, b, err
}
