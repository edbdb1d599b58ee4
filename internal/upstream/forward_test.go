package upstream

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// fakeConnect answers one CONNECT with answer and closes after 1 s.
func fakeConnect(t *testing.T, answer string) (string, <-chan *http.Request) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	reqs := make(chan *http.Request, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		req, err := http.ReadRequest(bufio.NewReader(c))
		if err != nil {
			return
		}
		reqs <- req
		_, _ = io.WriteString(c, answer)
		time.Sleep(time.Second)
	}()
	return l.Addr().String(), reqs
}

// The CONNECT request names the broker and carries basic auth; bytes the
// proxy sends right after its answer reach the tunnel's reader; an answer
// other than 200, or one that never ends, fails with the proxy named
// without its password.
func TestConnectDialer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	addr, reqs := fakeConnect(t, "HTTP/1.1 200 Connection established\r\nVia: test\r\n\r\nearly")
	d, err := newForwardDialer("http://kp:s3cret@"+addr, &net.Dialer{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := d.DialContext(ctx, "tcp", "kafka-0.internal:9093")
	if err != nil {
		t.Fatal(err)
	}
	req := <-reqs
	if req.Method != http.MethodConnect || req.Host != "kafka-0.internal:9093" {
		t.Errorf("request %s %s", req.Method, req.Host)
	}
	if u, p, ok := req.BasicAuth(); ok || u != "" || p != "" {
		t.Errorf("credentials in Authorization, not Proxy-Authorization")
	}
	if got := req.Header.Get("Proxy-Authorization"); got != "Basic a3A6czNjcmV0" {
		t.Errorf("Proxy-Authorization %q", got)
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "early" {
		t.Errorf("tunnel bytes after the answer: %q, %v", buf, err)
	}
	c.Close()

	for _, answer := range []string{
		"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n",
		"HTTP/1.1 200 OK\r\nX: " + strings.Repeat("a", 20<<10) + "\r\n\r\n",
	} {
		addr, _ := fakeConnect(t, answer)
		d, _ := newForwardDialer("http://kp:s3cret@"+addr, &net.Dialer{})
		_, err := d.DialContext(ctx, "tcp", "kafka-0.internal:9093")
		if err == nil || strings.Contains(err.Error(), "s3cret") || !strings.Contains(err.Error(), "kp:xxxxx@"+addr) {
			t.Errorf("answer %.40q: %v", answer, err)
		}
	}
}
