package upstream

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/aws/smithy-go/logging"
)

// The AWS SDK's lines go through the process logger (JSON in JSON mode),
// with the SDK's classification as the level.
func TestAWSLogThroughDefaultLogger(t *testing.T) {
	var b bytes.Buffer
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewJSONHandler(&b, nil)))
	defer slog.SetDefault(prev)
	awsLog(logging.Warn, "retrying %s", "AssumeRole")
	if s := b.String(); !strings.Contains(s, `"level":"WARN"`) || !strings.Contains(s, `"msg":"retrying AssumeRole"`) || !strings.Contains(s, `"source":"aws-sdk"`) {
		t.Fatalf("aws line: %s", s)
	}
}
