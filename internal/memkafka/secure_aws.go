package memkafka

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// AWS test identity: the fronts verify MSK IAM signatures by recomputing
// SigV4 with these, the way MSK checks them against IAM.
const (
	TestAWSAccessKeyID     = "AKIAKAFKAPROXYTEST01"
	TestAWSSecretAccessKey = "kafka-proxy-test-secret-access-key-000000"
	TestAWSRegion          = "eu-central-1"
)

// sigV4Params is a parsed, signed kafka-cluster:Connect request.
type sigV4Params struct {
	host   string
	params map[string]string // canonical (case-sensitive) query keys
}

// verifySigV4 recomputes the SigV4 query signature of a GET https://host/
// request with the known secrets and checks time validity. It returns the
// access key id as the principal and the signature's expiry.
func verifySigV4(p sigV4Params, secrets map[string]string, now time.Time) (string, time.Time, error) {
	get := func(k string) (string, error) {
		v, ok := p.params[k]
		if !ok || v == "" {
			return "", fmt.Errorf("missing %s", k)
		}
		return v, nil
	}
	if a, _ := get("Action"); a != "kafka-cluster:Connect" {
		return "", time.Time{}, fmt.Errorf("action %q is not kafka-cluster:Connect", a)
	}
	if a, _ := get("X-Amz-Algorithm"); a != "AWS4-HMAC-SHA256" {
		return "", time.Time{}, fmt.Errorf("algorithm %q is not AWS4-HMAC-SHA256", a)
	}
	if h, _ := get("X-Amz-SignedHeaders"); h != "host" {
		return "", time.Time{}, fmt.Errorf("signed headers %q are not host", h)
	}
	cred, err := get("X-Amz-Credential")
	if err != nil {
		return "", time.Time{}, err
	}
	parts := strings.Split(cred, "/")
	if len(parts) != 5 || parts[3] != "kafka-cluster" || parts[4] != "aws4_request" {
		return "", time.Time{}, fmt.Errorf("malformed credential scope %q", cred)
	}
	akid, date, region := parts[0], parts[1], parts[2]
	secret, ok := secrets[akid]
	if !ok {
		return "", time.Time{}, fmt.Errorf("unknown access key %s", akid)
	}
	stamp, err := get("X-Amz-Date")
	if err != nil {
		return "", time.Time{}, err
	}
	signedAt, err := time.Parse("20060102T150405Z", stamp)
	if err != nil || stamp[:8] != date {
		return "", time.Time{}, fmt.Errorf("bad X-Amz-Date %q", stamp)
	}
	expStr, err := get("X-Amz-Expires")
	if err != nil {
		return "", time.Time{}, err
	}
	secs, err := strconv.Atoi(expStr)
	if err != nil || secs <= 0 || secs > 7*24*3600 {
		return "", time.Time{}, fmt.Errorf("bad X-Amz-Expires %q", expStr)
	}
	expiry := signedAt.Add(time.Duration(secs) * time.Second)
	if now.After(expiry) {
		return "", time.Time{}, fmt.Errorf("signature expired at %s", expiry.Format(time.RFC3339))
	}
	if signedAt.After(now.Add(5 * time.Minute)) {
		return "", time.Time{}, errors.New("signature is dated in the future")
	}
	sig, err := get("X-Amz-Signature")
	if err != nil {
		return "", time.Time{}, err
	}

	keys := make([]string, 0, len(p.params))
	for k := range p.params {
		if k != "X-Amz-Signature" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var q strings.Builder
	for i, k := range keys {
		if i > 0 {
			q.WriteByte('&')
		}
		q.WriteString(awsEscape(k) + "=" + awsEscape(p.params[k]))
	}
	emptyHash := sha256.Sum256(nil)
	canonical := "GET\n/\n" + q.String() + "\nhost:" + p.host + "\n\nhost\n" + hex.EncodeToString(emptyHash[:])
	ch := sha256.Sum256([]byte(canonical))
	scope := strings.Join([]string{date, region, "kafka-cluster", "aws4_request"}, "/")
	toSign := "AWS4-HMAC-SHA256\n" + stamp + "\n" + scope + "\n" + hex.EncodeToString(ch[:])
	key := []byte("AWS4" + secret)
	for _, s := range []string{date, region, "kafka-cluster", "aws4_request"} {
		key = hmacSHA256(key, s)
	}
	want := hex.EncodeToString(hmacSHA256(key, toSign))
	if !hmac.Equal([]byte(want), []byte(sig)) {
		return "", time.Time{}, errors.New("signature does not match")
	}
	return akid, expiry, nil
}

func hmacSHA256(key []byte, data string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(data))
	return h.Sum(nil)
}

// awsEscape is SigV4's URI encoding: only unreserved characters stay.
func awsEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// verifyMSKIAMToken checks an aws-msk-iam-sasl-signer token: a base64url
// presigned https://kafka.<region>.amazonaws.com/?Action=kafka-cluster:Connect
// URL, with User-Agent added after signing.
func verifyMSKIAMToken(token string, secrets map[string]string, now time.Time) (string, time.Time, error) {
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return "", time.Time{}, errors.New("token is not base64url")
	}
	u, err := url.Parse(string(raw))
	if err != nil || u.Scheme != "https" {
		return "", time.Time{}, errors.New("token is not an https URL")
	}
	if !strings.HasPrefix(u.Host, "kafka.") || !strings.HasSuffix(u.Host, ".amazonaws.com") {
		return "", time.Time{}, fmt.Errorf("token host %q is not kafka.<region>.amazonaws.com", u.Host)
	}
	q := u.Query()
	params := map[string]string{}
	for k, v := range q {
		if k != "User-Agent" {
			params[k] = v[0]
		}
	}
	return verifySigV4(sigV4Params{host: u.Host, params: params}, secrets, now)
}

// verifyAWSMSKIAMPayload checks the JSON payload of the AWS_MSK_IAM
// mechanism (franz-go sasl/aws, aws-msk-iam-auth), whose keys are the
// lower-cased query parameters plus host, version and user-agent.
func verifyAWSMSKIAMPayload(payload []byte, secrets map[string]string, now time.Time) (string, time.Time, error) {
	var m map[string]string
	if err := json.Unmarshal(payload, &m); err != nil {
		return "", time.Time{}, errors.New("payload is not a JSON object of strings")
	}
	if m["version"] != "2020_10_22" {
		return "", time.Time{}, fmt.Errorf("unsupported payload version %q", m["version"])
	}
	canonical := map[string]string{
		"action": "Action", "x-amz-algorithm": "X-Amz-Algorithm", "x-amz-credential": "X-Amz-Credential",
		"x-amz-date": "X-Amz-Date", "x-amz-expires": "X-Amz-Expires", "x-amz-signedheaders": "X-Amz-SignedHeaders",
		"x-amz-security-token": "X-Amz-Security-Token", "x-amz-signature": "X-Amz-Signature",
	}
	params := map[string]string{}
	for k, v := range m {
		if ck, ok := canonical[k]; ok {
			params[ck] = v
		}
	}
	return verifySigV4(sigV4Params{host: m["host"], params: params}, secrets, now)
}
