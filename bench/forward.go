package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"strings"
	"time"
)

// runForward is the `bench forward` child: the raw TCP forwarder, the floor
// for any byte-level proxy. For every --to broker it listens on a port of
// its own and copies bytes both ways with io.Copy between the two
// *net.TCPConn, which on Linux splices in the kernel. It knows nothing of
// Kafka: the cluster advertises the forwarder's ports (see advListener).
// It prints "ready <listen addr>,..." (in --to order) and exits when stdin
// closes.
func runForward(args []string, stdin io.Reader, stdout io.Writer) error {
	fs := flag.NewFlagSet("forward", flag.ContinueOnError)
	to := fs.String("to", "", "comma-separated upstream addresses, one listener each")
	host := fs.String("listen-host", "127.0.0.1", "address the listeners bind to (port chosen by the kernel)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *to == "" {
		return fmt.Errorf("--to is required")
	}
	raiseNoFile()
	var addrs []string
	for _, up := range strings.Split(*to, ",") {
		ln, err := net.Listen("tcp", net.JoinHostPort(*host, "0"))
		if err != nil {
			return err
		}
		defer ln.Close()
		addrs = append(addrs, ln.Addr().String())
		go forwardAccept(ln, up)
	}
	fmt.Fprintf(stdout, "ready %s\n", strings.Join(addrs, ","))
	_, _ = io.Copy(io.Discard, stdin)
	return nil
}

// forwardAccept serves ln until it is closed.
func forwardAccept(ln net.Listener, upstream string) {
	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				time.Sleep(backoff)
				continue
			}
			if strings.Contains(err.Error(), "too many open files") {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				time.Sleep(backoff)
				continue
			}
			return
		}
		backoff = 0
		go forwardConn(c.(*net.TCPConn), upstream)
	}
}

// forwardConn relays one connection: two copies, each half-closing its
// destination when its source ends, as a byte-level proxy must.
func forwardConn(c *net.TCPConn, upstream string) {
	defer c.Close()
	uc, err := net.DialTimeout("tcp", upstream, 10*time.Second)
	if err != nil {
		return
	}
	u := uc.(*net.TCPConn)
	defer u.Close()
	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(u, c)
		_ = u.CloseWrite()
		close(done)
	}()
	_, _ = io.Copy(c, u)
	_ = c.CloseWrite()
	<-done
}
