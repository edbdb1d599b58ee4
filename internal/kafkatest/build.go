package kafkatest

import (
	"context"

	"github.com/kafka-proxy/kafka-proxy/internal/gobuild"
)

// BuildProxy compiles the module's ./cmd/kafka-proxy into out, for tests
// and the benchmark that need the real binary (process behaviour, signals,
// a separate process to measure). race builds with the race detector;
// ldflags, if any, are passed to the linker. It works from any directory
// inside the module.
func BuildProxy(ctx context.Context, out string, race bool, ldflags string) error {
	return gobuild.Build(ctx, "./cmd/kafka-proxy", out, race, ldflags)
}
