package memkafka

import (
	"context"
	"fmt"

	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/gssapi"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/service"
	"github.com/jcmturner/gokrb5/v8/spnego"
	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/kafka-proxy/kafka-proxy/internal/auth"
	"github.com/kafka-proxy/kafka-proxy/internal/config"
)

// gssapiMechanism accepts Kafka's SASL/GSSAPI (RFC 4752) with a service
// keytab, as a broker with sasl.enabled.mechanisms=GSSAPI does: the
// client's AP-REQ, then the security-layer offer (no layer) and the
// client's wrapped choice. The principal is the client's short name, as
// Kafka's default sasl.kerberos.principal.to.local.rules make it.
type gssapiMechanism struct{ kt *keytab.Keytab }

func (gssapiMechanism) Name() string { return config.MechanismGSSAPI }

func (m gssapiMechanism) Start() auth.Exchange { return &gssapiExchange{kt: m.kt} }

type gssapiExchange struct {
	kt    *keytab.Keytab
	key   types.EncryptionKey
	id    auth.Identity
	offer bool // the security layer offer was sent
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", auth.ErrInvalidCredentials, fmt.Sprintf(format, args...))
}

func (e *gssapiExchange) Step(_ context.Context, msg []byte) ([]byte, bool, error) {
	if !e.offer {
		var tok spnego.KRB5Token
		if err := tok.Unmarshal(msg); err != nil {
			return nil, false, invalid("gssapi token: %v", err)
		}
		if !tok.IsAPReq() {
			return nil, false, invalid("gssapi token is not an AP-REQ")
		}
		ok, creds, err := service.VerifyAPREQ(&tok.APReq, service.NewSettings(e.kt, service.DecodePAC(false)))
		if !ok {
			return nil, false, invalid("kerberos AP-REQ: %v", err)
		}
		e.key = tok.APReq.Ticket.DecryptedEncPart.Key
		e.id = auth.Identity{Principal: creds.UserName()}
		et, err := crypto.GetEtype(e.key.KeyType)
		if err != nil {
			return nil, false, invalid("kerberos key type: %v", err)
		}
		offer := gssapi.WrapToken{Flags: 0x01, EC: uint16(et.GetHMACBitLength() / 8), Payload: []byte{0x01, 0x00, 0x10, 0x00}}
		if err := offer.SetCheckSum(e.key, keyusage.GSSAPI_ACCEPTOR_SEAL); err != nil {
			return nil, false, err
		}
		b, err := offer.Marshal()
		if err != nil {
			return nil, false, err
		}
		e.offer = true
		return b, false, nil
	}
	var wt gssapi.WrapToken
	if err := wt.Unmarshal(msg, false); err != nil {
		return nil, false, invalid("gssapi security layer choice: %v", err)
	}
	if ok, err := wt.Verify(e.key, keyusage.GSSAPI_INITIATOR_SEAL); !ok {
		return nil, false, invalid("gssapi security layer choice does not verify: %v", err)
	}
	if len(wt.Payload) < 4 || wt.Payload[0] != 0x01 {
		return nil, false, invalid("gssapi: the client chose a security layer this broker does not offer")
	}
	return nil, true, nil
}

func (e *gssapiExchange) Identity() auth.Identity { return e.id }
