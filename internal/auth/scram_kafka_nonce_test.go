package auth

import (
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"encoding/base64"
	"strconv"
	"strings"
	"testing"
)

// TestScramDoubledClientNonce: librdkafka 2.0 (Debian bookworm's, under
// kcat and confluent-kafka-python) sends its client nonce twice in
// client-final-message; Kafka accepts a nonce that ends with the server's,
// and so must the proxy. The client side is computed here by RFC 5802, so
// the proof is over the message the client really sent.
func TestScramDoubledClientNonce(t *testing.T) {
	f := newFixture(t)
	for _, mech := range []string{MechanismScramSHA256, MechanismScramSHA512} {
		for _, tc := range []struct {
			password string
			double   bool
			ok       bool
		}{{"alice-secret", true, true}, {"wrong", true, false}, {"alice-secret", false, true}} {
			ex := f.mechanism(mech).Start()
			const cnonce = "epu{BeYuHqxY`CzkVGQo9aCTo|WXRed4"
			bare := "n=alice,r=" + cnonce
			serverFirst, done, err := ex.Step(context.Background(), []byte("n,,"+bare))
			if err != nil || done {
				t.Fatalf("%s client-first: %v", mech, err)
			}
			sf := string(serverFirst)
			salt, _ := base64.StdEncoding.DecodeString(scramAttr(sf, "s"))
			iters, _ := strconv.Atoi(scramAttr(sf, "i"))
			nonce := scramAttr(sf, "r")
			if tc.double {
				nonce = cnonce + nonce
			}
			h := xdgHash(mech)
			salted, err := pbkdf2.Key(h, tc.password, salt, iters, h().Size())
			if err != nil {
				t.Fatal(err)
			}
			mac := func(key []byte, msg string) []byte {
				m := hmac.New(h, key)
				m.Write([]byte(msg))
				return m.Sum(nil)
			}
			clientKey := mac(salted, "Client Key")
			sum := h()
			sum.Write(clientKey)
			storedKey := sum.Sum(nil)
			withoutProof := "c=biws,r=" + nonce
			authMessage := bare + "," + sf + "," + withoutProof
			proof := mac(storedKey, authMessage)
			for i := range proof {
				proof[i] ^= clientKey[i]
			}
			final := withoutProof + ",p=" + base64.StdEncoding.EncodeToString(proof)
			reply, done, err := ex.Step(context.Background(), []byte(final))
			if !tc.ok {
				if err == nil || done {
					t.Errorf("%s %+v: authenticated", mech, tc)
				}
				continue
			}
			if err != nil || !done || ex.Identity().Principal != "alice" {
				t.Fatalf("%s %+v: %v", mech, tc, err)
			}
			wantSig := base64.StdEncoding.EncodeToString(mac(mac(salted, "Server Key"), authMessage))
			if string(reply) != "v="+wantSig {
				t.Errorf("%s %+v: server-final %q, want v=%s", mech, tc, reply, wantSig)
			}
		}
	}
	// A nonce that only contains the server's, not at the end, is refused.
	ex := f.mechanism(MechanismScramSHA256).Start()
	sf, _, _ := ex.Step(context.Background(), []byte("n,,n=alice,r=abc"))
	if _, _, err := ex.Step(context.Background(), []byte("c=biws,r="+scramAttr(string(sf), "r")+"x,p=AAAA")); err == nil || !strings.Contains(err.Error(), "invalid credentials") {
		t.Errorf("bad nonce: %v", err)
	}
}
