package main

import (
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"
)

// runForward is the `bench forward` child: the raw TCP forwarder, the floor
// for any byte-level proxy. For every --to broker it listens on a port of
// its own and copies bytes both ways with io.Copy between the two
// *net.TCPConn, which on Linux splices in the kernel. It knows nothing of
// Kafka: the cluster advertises the forwarder's ports (see advListener).
// With --tls-ca it originates TLS to the brokers instead (verifying them
// against that CA), as a TLS-originating sidecar such as stunnel in client
// mode does: its clients still speak plain Kafka. It prints "ready <listen addr>,..." (in
// --to order) and exits when stdin closes.
func runForward(args []string, stdin io.Reader, stdout io.Writer) error {
	fs := flag.NewFlagSet("forward", flag.ContinueOnError)
	to := fs.String("to", "", "comma-separated upstream addresses, one listener each")
	host := fs.String("listen-host", "127.0.0.1", "address the listeners bind to (port chosen by the kernel)")
	caFile := fs.String("tls-ca", "", "PEM CA: dial the brokers over TLS, verified against it")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *to == "" {
		return fmt.Errorf("--to is required")
	}
	var roots *x509.CertPool
	if *caFile != "" {
		pem, err := os.ReadFile(*caFile)
		if err != nil {
			return err
		}
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return fmt.Errorf("%s: no certificate", *caFile)
		}
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
		go forwardAccept(ln, up, roots)
	}
	fmt.Fprintf(stdout, "ready %s\n", strings.Join(addrs, ","))
	_, _ = io.Copy(io.Discard, stdin)
	return nil
}

// forwardAccept serves ln until it is closed; roots, if set, make it
// originate TLS.
func forwardAccept(ln net.Listener, upstream string, roots *x509.CertPool) {
	dial := func() (halfCloser, error) {
		c, err := net.DialTimeout("tcp", upstream, 10*time.Second)
		if err != nil {
			return nil, err
		}
		return c.(*net.TCPConn), nil
	}
	if roots != nil {
		host, _, err := net.SplitHostPort(upstream)
		if err != nil {
			return
		}
		d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 10 * time.Second},
			Config: &tls.Config{RootCAs: roots, ServerName: host, MinVersion: tls.VersionTLS12}}
		dial = func() (halfCloser, error) {
			c, err := d.Dial("tcp", upstream)
			if err != nil {
				return nil, err
			}
			return c.(*tls.Conn), nil
		}
	}
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
		go forwardConn(c.(*net.TCPConn), dial)
	}
}

// halfCloser is the broker side: a *net.TCPConn, or a *tls.Conn when the
// forwarder originates TLS.
type halfCloser interface {
	net.Conn
	CloseWrite() error
}

// forwardConn relays one connection: two copies, each half-closing its
// destination when its source ends, as a byte-level proxy must. Between
// two *net.TCPConn, io.Copy splices; with a *tls.Conn on the broker side it
// copies through a 32 KiB buffer each way.
func forwardConn(c *net.TCPConn, dial func() (halfCloser, error)) {
	defer c.Close()
	u, err := dial()
	if err != nil {
		return
	}
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
