package robustness

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"
)

// TestNoGoroutineLeakAfterShutdown runs real traffic through a proxy and
// shuts it down with connections in every state: a producer and a
// consumer mid-poll, an idle connection, one half way through a request
// and one that sent only garbage. Once Shutdown has returned and the
// clients and brokers are closed, no goroutine may remain.
func TestNoGoroutineLeakAfterShutdown(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	t.Run("traffic", func(t *testing.T) {
		const topic = "robust-leak"
		_, p := setup(t, nil)
		ctx := ctxT(t, 30*time.Second)
		prod := proxyClient(t, p, kgo.DefaultProduceTopic(topic), kgo.AllowAutoTopicCreation())
		for i := 0; i < 200; i++ {
			prod.Produce(ctx, &kgo.Record{Key: fmt.Appendf(nil, "l-%d", i)}, nil)
		}
		if err := prod.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		cons := proxyClient(t, p, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		for n := 0; n < 200 && ctx.Err() == nil; {
			n += cons.PollFetches(ctx).NumRecords()
		}
		// The consumer keeps a long poll in flight while we shut down.
		pollCtx, stopPoll := context.WithCancel(ctx)
		polled := make(chan struct{})
		go func() { defer close(polled); cons.PollFetches(pollCtx) }()

		idle := dialT(t, p.Bootstrap)
		half := dialT(t, p.Bootstrap)
		av := apiVersionsFrame(9)
		_, _ = half.Write(av[:7])
		garbage := dialT(t, p.Bootstrap)
		_, _ = garbage.Write([]byte{0xff, 0, 0, 1, 2})
		time.Sleep(100 * time.Millisecond)

		// The drain may end by its timeout (the half request is never
		// completed); either way every session must be gone after.
		sctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		if err := p.Server.Shutdown(sctx); err != nil {
			t.Logf("shutdown: %v", err)
		}
		stopPoll()
		<-polled
		for _, c := range []net.Conn{idle, half, garbage} {
			_ = c.Close()
		}
		// Cleanups close the clients, the proxy (again) and the cluster.
	})
}

func dialT(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
