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
// against that CA), as a TLS-terminating sidecar such as stunnel does: its
// clients still speak plain Kafka. It prints "ready <listen addr>,..." (in
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
		if roots != nil {
			go forwardTLSConn(c.(*net.TCPConn), upstream, roots)
			continue
		}
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

// forwardTLSConn is forwardConn with TLS to the broker: the same two
// io.Copy calls, which here copy through 32 KiB buffers (no splice: one
// side is a *tls.Conn).
func forwardTLSConn(c *net.TCPConn, upstream string, roots *x509.CertPool) {
	defer c.Close()
	host, _, err := net.SplitHostPort(upstream)
	if err != nil {
		return
	}
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 10 * time.Second},
		Config: &tls.Config{RootCAs: roots, ServerName: host, MinVersion: tls.VersionTLS12}}
	uc, err := d.Dial("tcp", upstream)
	if err != nil {
		return
	}
	u := uc.(*tls.Conn)
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
