package upstream

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/aws/aws-msk-iam-sasl-signer-go/signer"
	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go/logging"

	"github.com/kafka-proxy/kafka-proxy/internal/config"
)

// newAWSCredentials resolves the default AWS credential chain (env, shared
// config/profile, web identity, ECS/EC2 roles), optionally assuming a role.
// The SDK caches and refreshes the credentials itself.
func newAWSCredentials(ctx context.Context, c config.AWS, log *slog.Logger) (aws.CredentialsProvider, error) {
	// The SDK's own lines (retries, deprecations) go to the process log
	// in its format, never as plain text beside JSON lines.
	opts := []func(*awsconfig.LoadOptions) error{awsconfig.WithLogger(logging.LoggerFunc(awsLog))}
	if c.Region != "" {
		opts = append(opts, awsconfig.WithRegion(c.Region))
	}
	if c.Profile != "" {
		opts = append(opts, awsconfig.WithSharedConfigProfile(c.Profile))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("aws config: %w", err)
	}
	provider := cfg.Credentials
	if c.RoleARN != "" {
		name := c.RoleSessionName
		if name == "" {
			name = "kafka-proxy"
		}
		provider = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(sts.NewFromConfig(cfg), c.RoleARN,
			func(o *stscreds.AssumeRoleOptions) { o.RoleSessionName = name }))
	}
	if provider == nil {
		return nil, fmt.Errorf("aws: no credentials provider found")
	}
	if c.IdentityLookup {
		arn, err := callerIdentity(ctx, cfg, provider)
		if err != nil {
			return nil, fmt.Errorf("aws identity lookup (--sasl-aws-identity-lookup): %w", err)
		}
		log.Info("aws caller identity", "arn", arn)
	}
	return provider, nil
}

// callerIdentity asks STS whom provider's credentials belong to.
func callerIdentity(ctx context.Context, cfg aws.Config, provider aws.CredentialsProvider) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	out, err := sts.NewFromConfig(cfg, func(o *sts.Options) { o.Credentials = provider }).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return "", err
	}
	return aws.ToString(out.Arn), nil
}

// awsLog writes one AWS SDK log line to the default logger.
func awsLog(c logging.Classification, format string, v ...any) {
	level := slog.LevelInfo
	switch c {
	case logging.Warn:
		level = slog.LevelWarn
	case logging.Debug:
		level = slog.LevelDebug
	}
	slog.Default().Log(context.Background(), level, fmt.Sprintf(format, v...), "source", "aws-sdk")
}

// mskIAMToken signs MSK IAM OAUTHBEARER tokens (a presigned
// kafka-cluster:Connect URL, valid 15 minutes) with aws-msk-iam-sasl-signer-go.
type mskIAMToken struct {
	region string
	creds  aws.CredentialsProvider
	now    func() time.Time
	mu     sync.Mutex
	cache  cachedToken
}

func (m *mskIAMToken) Token(ctx context.Context) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	if m.cache.fresh(now) {
		return m.cache.token, nil
	}
	tok, expiryMs, err := signer.GenerateAuthTokenFromCredentialsProvider(ctx, m.region, m.creds)
	if err != nil {
		return "", fmt.Errorf("msk iam token: %w", err)
	}
	m.cache = cachedToken{token: tok, fetched: now, expiry: time.UnixMilli(expiryMs)}
	return tok, nil
}
