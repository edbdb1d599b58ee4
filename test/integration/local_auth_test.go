package integration

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	kafkago "github.com/segmentio/kafka-go"
	kgsasl "github.com/segmentio/kafka-go/sasl"
	kgplain "github.com/segmentio/kafka-go/sasl/plain"
	kgscram "github.com/segmentio/kafka-go/sasl/scram"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
	xscram "github.com/xdg-go/scram"

	"github.com/kafka-proxy/kafka-proxy/internal/certs"
	"github.com/kafka-proxy/kafka-proxy/internal/config"
	"github.com/kafka-proxy/kafka-proxy/internal/kafkatest"
	"github.com/kafka-proxy/kafka-proxy/internal/memkafka"
)

var localMechanisms = []string{config.LocalPlain, config.LocalScramSHA256, config.LocalScramSHA512}

// localAuthProxy starts a cluster and a proxy that terminates SASL with
// every mechanism, over a users file holding alice.
func localAuthProxy(t *testing.T, mutate func(*config.Config)) (*memkafka.Cluster, *kafkatest.Proxy, string) {
	t.Helper()
	usersFile := kafkatest.WriteUsers(t, map[string]string{"alice": "alice-secret"})
	c, p := setup(t, func(cfg *config.Config) {
		cfg.Auth.Local = config.LocalAuth{Enable: true, Mechanisms: localMechanisms, UsersFile: usersFile}
		if mutate != nil {
			mutate(cfg)
		}
	})
	return c, p, usersFile
}

// brokerRequests counts, at the brokers, requests of every key but
// ApiVersions (which the proxy sends itself to learn the versions).
func brokerRequests(c *memkafka.Cluster) *atomic.Int64 {
	var n atomic.Int64
	c.Control(func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if req.Key() != kmsg.ApiVersions.Int16() {
			n.Add(1)
		}
		return nil, nil, false
	})
	return &n
}

func franzMechanism(mech, user, password string) sasl.Mechanism {
	switch mech {
	case config.LocalScramSHA256:
		return scram.Auth{User: user, Pass: password}.AsSha256Mechanism()
	case config.LocalScramSHA512:
		return scram.Auth{User: user, Pass: password}.AsSha512Mechanism()
	}
	return plain.Auth{User: user, Pass: password}.AsMechanism()
}

func isAuthFailure(err error) bool {
	return errors.Is(err, kerr.SaslAuthenticationFailed) || (err != nil && strings.Contains(err.Error(), "SASL_AUTHENTICATION_FAILED"))
}

func TestLocalAuthFranzGo(t *testing.T) {
	c, p, _ := localAuthProxy(t, nil)
	for _, mech := range localMechanisms {
		t.Run(mech, func(t *testing.T) {
			ctx := ctxT(t, 60*time.Second)
			topic := "local-franz-" + strings.ToLower(mech)
			cl := franzClient(t, p, kgo.SASL(franzMechanism(mech, "alice", "alice-secret")), kgo.DefaultProduceTopic(topic), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.AllowAutoTopicCreation())
			want := keyedValues(50)
			produceAll(ctx, t, cl, want)
			consumeInto(ctx, t, cl, len(want)).check(t, want, false)
			cl.Close() // its fetches would count below

			before := brokerRequests(c)
			bad := franzClient(t, p, kgo.SASL(franzMechanism(mech, "alice", "wrong")), kgo.RetryTimeout(time.Second))
			err := bad.Ping(ctx)
			if !isAuthFailure(err) {
				t.Fatalf("wrong password: %v, want SASL_AUTHENTICATION_FAILED", err)
			}
			if n := before.Load(); n != 0 {
				t.Errorf("a client with a wrong password got %d requests to the brokers", n)
			}
		})
	}
	if n := p.MetricSum(t, "proxy_client_auth_total", func(l map[string]string) bool { return l["result"] == "failure" }); n < 3 {
		t.Errorf("proxy_client_auth_total{result=failure} = %v, want ≥ 3", n)
	}
	if n := p.MetricSum(t, "proxy_client_auth_total", func(l map[string]string) bool { return l["result"] == "success" && l["mechanism"] == "SCRAM-SHA-512" }); n < 1 {
		t.Errorf("proxy_client_auth_total{mechanism=SCRAM-SHA-512,result=success} = %v", n)
	}
	if strings.Contains(p.Logs.String(), "alice-secret") || strings.Contains(p.Logs.String(), "wrong\"") {
		t.Errorf("a password reached the log")
	}
	if !p.Logs.Contains("client authentication failed", `user \"alice\"`) {
		t.Errorf("no failure log line naming the user:\n%s", p.Logs.String())
	}
}

// consumeInto polls until n records arrived.
func consumeInto(ctx context.Context, t *testing.T, cl *kgo.Client, n int) *seen {
	t.Helper()
	s := newSeen()
	for s.count() < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d: %v", s.count(), n, ctx.Err())
		}
		fs.EachError(func(topic string, part int32, err error) { t.Logf("fetch %s/%d: %v", topic, part, err) })
		fs.EachRecord(func(r *kgo.Record) { s.add(string(r.Key), string(r.Value)) })
	}
	return s
}

// xdgSCRAM is sarama's SCRAM client on xdg-go/scram, as sarama's own
// examples build it.
type xdgSCRAM struct {
	hash xscram.HashGeneratorFcn
	conv *xscram.ClientConversation
}

func (x *xdgSCRAM) Begin(user, password, authzID string) error {
	c, err := x.hash.NewClient(user, password, authzID)
	if err != nil {
		return err
	}
	x.conv = c.NewConversation()
	return nil
}

func (x *xdgSCRAM) Step(challenge string) (string, error) { return x.conv.Step(challenge) }
func (x *xdgSCRAM) Done() bool                            { return x.conv.Done() }

func saramaSASL(p *kafkatest.Proxy, mech string, handshake int16, user, password string) *sarama.Config {
	cfg := saramaConfig(p)
	cfg.Net.SASL.Enable = true
	cfg.Net.SASL.Version = handshake
	cfg.ApiVersionsRequest = handshake != sarama.SASLHandshakeV0 // sarama's rule, as old clients do
	cfg.Net.SASL.User, cfg.Net.SASL.Password = user, password
	cfg.Net.SASL.Mechanism = sarama.SASLMechanism(mech)
	switch mech {
	case config.LocalScramSHA256:
		cfg.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &xdgSCRAM{hash: xscram.SHA256} }
	case config.LocalScramSHA512:
		cfg.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &xdgSCRAM{hash: xscram.SHA512} }
	}
	cfg.Producer.Partitioner = sarama.NewManualPartitioner
	cfg.Metadata.Retry.Max = 1
	return cfg
}

// TestLocalAuthSarama covers SaslHandshake v1 (SaslAuthenticate) and v0
// (raw tokens on the wire, as kafka-python 2.x and older librdkafka send).
func TestLocalAuthSarama(t *testing.T) {
	_, p, _ := localAuthProxy(t, nil)
	for _, handshake := range []int16{sarama.SASLHandshakeV1, sarama.SASLHandshakeV0} {
		for _, mech := range localMechanisms {
			t.Run(fmt.Sprintf("%s/handshake-v%d", mech, handshake), func(t *testing.T) {
				topic := fmt.Sprintf("local-sarama-%s-v%d", strings.ToLower(mech), handshake)
				cfg := saramaSASL(p, mech, handshake, "alice", "alice-secret")
				prod, err := sarama.NewSyncProducer([]string{p.Bootstrap}, cfg)
				if err != nil {
					t.Fatalf("producer: %v", err)
				}
				defer prod.Close()
				const n = 20
				for i := range n {
					if _, _, err := prod.SendMessage(&sarama.ProducerMessage{Topic: topic, Partition: 0, Value: sarama.StringEncoder(fmt.Sprintf("v-%d", i))}); err != nil {
						t.Fatalf("produce: %v", err)
					}
				}
				cons, err := sarama.NewConsumer([]string{p.Bootstrap}, cfg)
				if err != nil {
					t.Fatalf("consumer: %v", err)
				}
				defer cons.Close()
				pc, err := cons.ConsumePartition(topic, 0, sarama.OffsetOldest)
				if err != nil {
					t.Fatalf("consume: %v", err)
				}
				defer pc.Close()
				timeout := time.After(30 * time.Second)
				for i := range n {
					select {
					case m := <-pc.Messages():
						if got, want := string(m.Value), fmt.Sprintf("v-%d", i); got != want {
							t.Fatalf("record %d: %q, want %q", i, got, want)
						}
					case <-timeout:
						t.Fatalf("consumed %d of %d", i, n)
					}
				}

				bad := saramaSASL(p, mech, handshake, "alice", "wrong")
				cl, err := sarama.NewClient([]string{p.Bootstrap}, bad)
				if err == nil {
					cl.Close()
					t.Fatal("wrong password: client connected")
				}
				// v1 carries the broker's error; v0 has no error frame, so
				// the connection closes (as with Kafka).
				if handshake == sarama.SASLHandshakeV1 && !errors.Is(err, sarama.ErrSASLAuthenticationFailed) {
					t.Errorf("wrong password: %v, want %v", err, sarama.ErrSASLAuthenticationFailed)
				}
			})
		}
	}
}

func kafkaGoMechanism(t *testing.T, mech, user, password string) kgsasl.Mechanism {
	t.Helper()
	switch mech {
	case config.LocalScramSHA256, config.LocalScramSHA512:
		algo := kgscram.SHA256
		if mech == config.LocalScramSHA512 {
			algo = kgscram.SHA512
		}
		m, err := kgscram.Mechanism(algo, user, password)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	return kgplain.Mechanism{Username: user, Password: password}
}

func TestLocalAuthKafkaGo(t *testing.T) {
	_, p, _ := localAuthProxy(t, nil)
	for _, mech := range localMechanisms {
		t.Run(mech, func(t *testing.T) {
			ctx := ctxT(t, 60*time.Second)
			topic := "local-kafkago-" + strings.ToLower(mech)
			m := kafkaGoMechanism(t, mech, "alice", "alice-secret")
			transport := &kafkago.Transport{Dial: p.DialContext, SASL: m, MetadataTTL: time.Second}
			w := &kafkago.Writer{Addr: kafkago.TCP(p.Bootstrap), Topic: topic, Transport: transport, AllowAutoTopicCreation: true,
				Balancer: kafkago.BalancerFunc(func(kafkago.Message, ...int) int { return 0 }), BatchTimeout: 10 * time.Millisecond}
			const n = 20
			var msgs []kafkago.Message
			for i := range n {
				msgs = append(msgs, kafkago.Message{Value: []byte(fmt.Sprintf("v-%d", i))})
			}
			var err error
			for range 20 { // the first write may race the topic's creation
				if err = w.WriteMessages(ctx, msgs...); err == nil || !errors.Is(err, kafkago.UnknownTopicOrPartition) {
					break
				}
				time.Sleep(200 * time.Millisecond)
			}
			if err != nil {
				t.Fatalf("produce: %v", err)
			}
			_ = w.Close()
			dialer := &kafkago.Dialer{Timeout: 10 * time.Second, SASLMechanism: m, DialFunc: p.DialContext}
			r := kafkago.NewReader(kafkago.ReaderConfig{Brokers: []string{p.Bootstrap}, Topic: topic, Partition: 0, Dialer: dialer, MaxWait: 100 * time.Millisecond})
			defer r.Close()
			for i := range n {
				msg, err := r.ReadMessage(ctx)
				if err != nil {
					t.Fatalf("consume %d: %v", i, err)
				}
				if got, want := string(msg.Value), fmt.Sprintf("v-%d", i); got != want {
					t.Fatalf("record %d: %q, want %q", i, got, want)
				}
			}

			bad := kafkaGoMechanism(t, mech, "alice", "wrong")
			client := &kafkago.Client{Addr: kafkago.TCP(p.Bootstrap), Transport: &kafkago.Transport{Dial: p.DialContext, SASL: bad}}
			_, err = client.Metadata(ctx, &kafkago.MetadataRequest{})
			if !errors.Is(err, kafkago.SASLAuthenticationFailed) {
				t.Errorf("wrong password: %v, want %v", err, kafkago.SASLAuthenticationFailed)
			}
		})
	}
}

// rawConn is a hand-driven client connection: what no real client would
// send, to see exactly what the proxy answers and forwards.
type rawConn struct {
	t    *testing.T
	conn net.Conn
	corr int32
}

func dialRaw(t *testing.T, p *kafkatest.Proxy) *rawConn {
	t.Helper()
	conn, err := net.Dial("tcp", p.Bootstrap)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	return &rawConn{t: t, conn: conn}
}

func (r *rawConn) send(req kmsg.Request) int32 {
	r.t.Helper()
	r.corr++
	if _, err := r.conn.Write(requestFrame(req, r.corr)); err != nil {
		r.t.Fatalf("send %s: %v", kmsg.NameForKey(req.Key()), err)
	}
	return r.corr
}

// roundTrip sends req and decodes its response into resp.
func (r *rawConn) roundTrip(req kmsg.Request, resp kmsg.Response) {
	r.t.Helper()
	corr := r.send(req)
	if got := readResponse(r.t, r.conn, resp, req.GetVersion()); got != corr {
		r.t.Fatalf("%s: correlation id %d, want %d", kmsg.NameForKey(req.Key()), got, corr)
	}
}

// closed reports whether the proxy closed the connection (nothing more
// to read).
func (r *rawConn) closed() bool {
	_ = r.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	var b [1]byte
	_, err := r.conn.Read(b[:])
	return err != nil && !isTimeout(err)
}

// authenticate runs a SaslHandshake v1 and SaslAuthenticate v1 PLAIN
// exchange and returns the announced session lifetime.
func (r *rawConn) authenticate(user, password string) time.Duration {
	r.t.Helper()
	return r.authenticateWith("PLAIN", []byte("\x00"+user+"\x00"+password), localMechanisms)
}

// authenticateWith runs a one-message exchange of mechanism, checking the
// handshake lists mechs.
func (r *rawConn) authenticateWith(mechanism string, msg []byte, mechs []string) time.Duration {
	r.t.Helper()
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.Version, hs.Mechanism = 1, mechanism
	hsResp := kmsg.NewPtrSASLHandshakeResponse()
	r.roundTrip(hs, hsResp)
	if hsResp.ErrorCode != 0 || strings.Join(hsResp.SupportedMechanisms, ",") != strings.Join(mechs, ",") {
		r.t.Fatalf("handshake: error %d, mechanisms %v", hsResp.ErrorCode, hsResp.SupportedMechanisms)
	}
	au := kmsg.NewPtrSASLAuthenticateRequest()
	au.Version, au.SASLAuthBytes = 1, msg
	auResp := kmsg.NewPtrSASLAuthenticateResponse()
	r.roundTrip(au, auResp)
	if auResp.ErrorCode != 0 {
		r.t.Fatalf("authenticate: error %d (%v)", auResp.ErrorCode, auResp.ErrorMessage)
	}
	return time.Duration(auResp.SessionLifetimeMillis) * time.Millisecond
}

// TestLocalAuthNothingForwardedBeforeAuth: a request other than
// ApiVersions before authentication closes the connection, and the
// brokers never see it.
func TestLocalAuthNothingForwardedBeforeAuth(t *testing.T) {
	c, p, _ := localAuthProxy(t, nil)
	seenAtBrokers := brokerRequests(c)
	meta := kmsg.NewPtrMetadataRequest()
	meta.Version = 9
	topic := "secret-topic"
	meta.Topics = []kmsg.MetadataRequestTopic{{Topic: &topic}}
	prod := kmsg.NewPtrProduceRequest()
	prod.Version, prod.Acks, prod.TimeoutMillis = 7, -1, 1000

	for name, first := range map[string][]kmsg.Request{
		"metadata first":               {meta},
		"produce first":                {prod},
		"metadata after apiversions":   {kmsg.NewPtrApiVersionsRequest(), meta},
		"metadata during the exchange": {kmsg.NewPtrApiVersionsRequest(), &kmsg.SASLHandshakeRequest{Version: 1, Mechanism: "PLAIN"}, meta},
	} {
		r := dialRaw(t, p)
		for i, req := range first {
			if i < len(first)-1 {
				resp := req.ResponseKind()
				r.roundTrip(req, resp)
				continue
			}
			r.send(req)
		}
		if !r.closed() {
			t.Errorf("%s: the connection stayed open", name)
		}
	}
	if n := seenAtBrokers.Load(); n != 0 {
		t.Errorf("the brokers received %d requests from unauthenticated clients", n)
	}
	if !p.Logs.Contains("connection closed: not authenticated", "request before sasl authentication: Metadata") {
		t.Errorf("no log line for the refused Metadata:\n%s", p.Logs.String())
	}

	// The same requests after authentication are served.
	r := dialRaw(t, p)
	r.roundTrip(kmsg.NewPtrApiVersionsRequest(), kmsg.NewPtrApiVersionsResponse())
	r.authenticate("alice", "alice-secret")
	resp := kmsg.NewPtrMetadataResponse()
	r.roundTrip(meta, resp)
	if seenAtBrokers.Load() == 0 {
		t.Error("an authenticated Metadata did not reach the brokers")
	}
}

// TestLocalAuthApiVersions: the answer before authentication is the
// broker's (through the clamp), with the proxy's own SASL versions, at
// every version; a version too new gets UNSUPPORTED_VERSION in v0.
func TestLocalAuthApiVersions(t *testing.T) {
	_, p, _ := localAuthProxy(t, nil)
	for v := int16(0); v <= kmsg.NewPtrApiVersionsRequest().MaxVersion(); v++ {
		r := dialRaw(t, p)
		req := kmsg.NewPtrApiVersionsRequest()
		req.Version, req.ClientSoftwareName, req.ClientSoftwareVersion = v, "raw-test", "1.0"
		resp := kmsg.NewPtrApiVersionsResponse()
		r.roundTrip(req, resp)
		if resp.ErrorCode != 0 {
			t.Fatalf("v%d: error %d", v, resp.ErrorCode)
		}
		ranges := map[int16][2]int16{}
		for _, k := range resp.ApiKeys {
			ranges[k.ApiKey] = [2]int16{k.MinVersion, k.MaxVersion}
		}
		if got := ranges[kmsg.SASLHandshake.Int16()]; got != [2]int16{0, 1} {
			t.Errorf("v%d: SaslHandshake %v, want [0 1]", v, got)
		}
		if got := ranges[kmsg.SASLAuthenticate.Int16()]; got != [2]int16{0, 2} {
			t.Errorf("v%d: SaslAuthenticate %v, want [0 2]", v, got)
		}
		if got := ranges[kmsg.Produce.Int16()]; got[1] < 3 {
			t.Errorf("v%d: Produce %v: not the broker's versions", v, got)
		}
		r.authenticate("alice", "alice-secret")
		// Asked again after authentication (the broker answers now): the
		// same SASL versions.
		again := kmsg.NewPtrApiVersionsResponse()
		r.roundTrip(req, again)
		for _, k := range again.ApiKeys {
			if want, ok := ranges[k.ApiKey]; ok && (k.ApiKey == kmsg.SASLHandshake.Int16() || k.ApiKey == kmsg.SASLAuthenticate.Int16()) && [2]int16{k.MinVersion, k.MaxVersion} != want {
				t.Errorf("v%d after authentication: %s %d-%d, before %v", v, kmsg.NameForKey(k.ApiKey), k.MinVersion, k.MaxVersion, want)
			}
		}
	}
	r := dialRaw(t, p)
	req := kmsg.NewPtrApiVersionsRequest()
	req.Version = req.MaxVersion() + 1
	r.corr++
	frame := requestFrame(&kmsg.ApiVersionsRequest{Version: req.MaxVersion()}, r.corr)
	frame[7] = byte(req.Version) // the header's version: one kmsg cannot encode
	if _, err := r.conn.Write(frame); err != nil {
		t.Fatal(err)
	}
	resp := kmsg.NewPtrApiVersionsResponse()
	readResponse(t, r.conn, resp, 0)
	if resp.ErrorCode != kerr.UnsupportedVersion.Code || len(resp.ApiKeys) != 1 || resp.ApiKeys[0].MaxVersion != req.MaxVersion() {
		t.Errorf("ApiVersions v%d: %+v, want UNSUPPORTED_VERSION with the ApiVersions range", req.Version, resp)
	}
}

// TestLocalAuthSessionLifetime (KIP-368): the lifetime is announced; a
// client that re-authenticates keeps its connection (franz-go does), one
// that does not is closed at its first request after expiry.
func TestLocalAuthSessionLifetime(t *testing.T) {
	// franz-go renews a second before expiry, and Kafka refuses a renewal
	// within a second of the last: 3 s is a short lifetime both accept.
	_, p, _ := localAuthProxy(t, func(cfg *config.Config) { cfg.Auth.Local.SessionLifetime = 3 * time.Second })

	r := dialRaw(t, p)
	if got := r.authenticate("alice", "alice-secret"); got != 3*time.Second {
		t.Errorf("session lifetime %v, want 3s", got)
	}
	meta := kmsg.NewPtrMetadataRequest()
	meta.Version = 9
	r.roundTrip(meta, kmsg.NewPtrMetadataResponse())
	time.Sleep(3100 * time.Millisecond)
	r.send(meta)
	if !r.closed() {
		t.Error("a request after the session expired was served")
	}
	if !p.Logs.WaitFor(5*time.Second, "sasl session expired") {
		t.Errorf("no log line for the expired session:\n%s", p.Logs.String())
	}

	ctx := ctxT(t, 60*time.Second)
	var disconnects atomic.Int64
	cl := franzClient(t, p, kgo.SASL(franzMechanism(config.LocalScramSHA256, "alice", "alice-secret")),
		kgo.DefaultProduceTopic("local-reauth"), kgo.AllowAutoTopicCreation(), kgo.WithHooks(disconnectCounter{&disconnects}))
	want := map[string]string{}
	for i := range 35 { // 7 s of produce: more than two lifetimes
		k, v := fmt.Sprintf("k-%d", i), fmt.Sprintf("v-%d", i)
		want[k] = v
		if err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte(k), Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatalf("produce %d: %v", i, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if n := p.MetricSum(t, "proxy_client_auth_total", func(l map[string]string) bool { return l["result"] == "reauthenticated" }); n < 2 {
		t.Errorf("proxy_client_auth_total{result=reauthenticated} = %v, want ≥ 2", n)
	}
	if n := disconnects.Load(); n != 0 {
		t.Errorf("%d connections closed under a re-authenticating client", n)
	}
}

// TestLocalAuthUsersFileLive: users added or deleted with `kafka-proxy
// users` apply to the next authentication, without a restart.
func TestLocalAuthUsersFileLive(t *testing.T) {
	_, p, usersFile := localAuthProxy(t, nil)
	ctx := ctxT(t, 30*time.Second)
	ping := func(user, password string) error {
		cl := franzClient(t, p, kgo.SASL(franzMechanism(config.LocalScramSHA512, user, password)), kgo.RetryTimeout(time.Second))
		defer cl.Close()
		return cl.Ping(ctx)
	}
	if err := ping("bob", "bob-secret"); !isAuthFailure(err) {
		t.Fatalf("bob before being added: %v", err)
	}
	kafkatest.UpdateUsers(t, usersFile, map[string]string{"bob": "bob-secret"})
	deadline := time.Now().Add(10 * time.Second)
	var err error
	for err = ping("bob", "bob-secret"); err != nil && time.Now().Before(deadline); err = ping("bob", "bob-secret") {
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("bob after being added: %v", err)
	}
	if err := ping("alice", "alice-secret"); !isAuthFailure(err) {
		t.Errorf("alice after being deleted: %v", err)
	}
}

// TestLocalAuthOverTLS: SASL_SSL, and SASL together with a required
// client certificate; the principal is the SASL user, as in Kafka.
func TestLocalAuthOverTLS(t *testing.T) {
	root, err := certs.NewRoot("proxy test CA", certs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := root.IssueServer("proxy", []string{"127.0.0.1"}, certs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cli, err := root.IssueClient("app", certs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	write := tempWriter(t)
	certFile, keyFile, caFile := write("srv.pem", srv.ChainPEM()), write("srv.key", srv.KeyPEM()), write("ca.pem", root.CertPEM())
	pool := x509.NewCertPool()
	pool.AddCert(root.Cert)
	for _, mtls := range []bool{false, true} {
		t.Run(fmt.Sprintf("mtls=%v", mtls), func(t *testing.T) {
			_, p, _ := localAuthProxy(t, func(cfg *config.Config) {
				cfg.Proxy.TLS = config.ListenerTLS{Enable: true, CertFile: certFile, KeyFile: keyFile}
				if mtls {
					cfg.Proxy.TLS.CAChainCertFile = caFile
				}
			})
			tlsCfg := &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
			if mtls {
				tlsCfg.Certificates = []tls.Certificate{cli.TLSCertificate()}
			}
			dial := func(ctx context.Context, network, host string) (net.Conn, error) {
				raw, err := p.DialContext(ctx, network, host)
				if err != nil {
					return nil, err
				}
				tc := tls.Client(raw, tlsCfg.Clone())
				if err := tc.HandshakeContext(ctx); err != nil {
					raw.Close()
					return nil, err
				}
				return tc, nil
			}
			ctx := ctxT(t, 60*time.Second)
			for _, mech := range localMechanisms {
				cl := franzClient(t, p, kgo.Dialer(dial), kgo.SASL(franzMechanism(mech, "alice", "alice-secret")),
					kgo.DefaultProduceTopic("local-tls"), kgo.AllowAutoTopicCreation())
				produceAll(ctx, t, cl, keyedValues(10))
				bad := franzClient(t, p, kgo.Dialer(dial), kgo.SASL(franzMechanism(mech, "alice", "wrong")), kgo.RetryTimeout(time.Second))
				if err := bad.Ping(ctx); !isAuthFailure(err) {
					t.Errorf("%s wrong password: %v", mech, err)
				}
			}
			if !p.Logs.Contains("principal=User:alice") {
				t.Errorf("the sessions' principal is not User:alice:\n%s", p.Logs.String())
			}
		})
	}
}
