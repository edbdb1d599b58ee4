package upstream

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/kafka-proxy/kafka-proxy/internal/config"
)

// stsStub answers GetCallerIdentity as STS does, for requests signed with
// the access key it knows, and with STS's error otherwise.
func stsStub(t *testing.T, knownKey, arn string, calls *atomic.Int32) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		_ = r.ParseForm()
		if r.Form.Get("Action") != "GetCallerIdentity" {
			http.Error(w, "unexpected action", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "text/xml")
		if !strings.Contains(r.Header.Get("Authorization"), "Credential="+knownKey+"/") {
			w.WriteHeader(http.StatusForbidden)
			_, _ = w.Write([]byte(`<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>InvalidClientTokenId</Code><Message>The security token included in the request is invalid.</Message></Error><RequestId>r1</RequestId></ErrorResponse>`))
			return
		}
		_, _ = w.Write([]byte(`<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><GetCallerIdentityResult><Arn>` + arn +
			`</Arn><UserId>AIDATEST</UserId><Account>123456789012</Account></GetCallerIdentityResult><ResponseMetadata><RequestId>r2</RequestId></ResponseMetadata></GetCallerIdentityResponse>`))
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestAWSIdentityLookup: with --sasl-aws-identity-lookup the credentials
// are checked with STS at start and their ARN logged; credentials STS
// does not know stop the start, naming the flag.
func TestAWSIdentityLookup(t *testing.T) {
	const arn = "arn:aws:iam::123456789012:role/orders-proxy"
	var calls atomic.Int32
	srv := stsStub(t, "AKIAKNOWN", arn, &calls)
	t.Setenv("AWS_ENDPOINT_URL_STS", srv.URL)
	t.Setenv("AWS_CONFIG_FILE", "/nonexistent")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")

	t.Setenv("AWS_ACCESS_KEY_ID", "AKIAKNOWN")
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	if _, err := newAWSCredentials(context.Background(), config.AWS{Region: "eu-west-1", IdentityLookup: true}, log); err != nil {
		t.Fatalf("known credentials: %v", err)
	}
	if !strings.Contains(logs.String(), "aws caller identity") || !strings.Contains(logs.String(), arn) {
		t.Errorf("the caller identity is not logged: %s", logs.String())
	}

	t.Setenv("AWS_ACCESS_KEY_ID", "AKIAUNKNOWN")
	_, err := newAWSCredentials(context.Background(), config.AWS{Region: "eu-west-1", IdentityLookup: true}, log)
	if err == nil || !strings.Contains(err.Error(), "--sasl-aws-identity-lookup") || !strings.Contains(err.Error(), "InvalidClientTokenId") {
		t.Fatalf("unknown credentials: %v, want the STS error naming the flag", err)
	}
	if strings.Contains(err.Error(), "secret") {
		t.Errorf("the secret key reached the error: %v", err)
	}

	// Without the flag, STS is not asked.
	before := calls.Load()
	if _, err := newAWSCredentials(context.Background(), config.AWS{Region: "eu-west-1"}, log); err != nil {
		t.Fatalf("without the lookup: %v", err)
	}
	if calls.Load() != before {
		t.Error("STS asked without --sasl-aws-identity-lookup")
	}
}
