package main

import (
	"bufio"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kfake"
)

// The benchmark topics: produce is blackholed (the cluster acks and drops
// the records, so its memory stays flat), consume is served from one canned
// batch of RecordBytes-sized records (kfake.SyntheticFetch), so both run for
// as long as wanted without the cluster storing anything.
const (
	produceTopic = "bench-produce"
	consumeTopic = "bench-consume"
)

// runCluster is the `bench cluster` child: an in-process kfake cluster in
// a process of its own; with --tls-cert and --tls-key its listeners speak
// TLS. It prints "ready <broker addr>,..." and then obeys
// one command per stdin line, answering "ok" or "error ...":
//
//	advertise real           brokers advertise their own listen addresses
//	advertise <addr>,...     broker i advertises addr i (a forwarder's)
//
// It exits when stdin closes, so it never outlives the bench process.
func runCluster(args []string, stdin io.Reader, stdout io.Writer) error {
	fs := flag.NewFlagSet("cluster", flag.ContinueOnError)
	brokers := fs.Int("brokers", 3, "brokers")
	partitions := fs.Int("partitions", 3, "partitions per benchmark topic")
	recordBytes := fs.Int("record-bytes", 1024, "record value size served to consumers")
	certFile := fs.String("tls-cert", "", "PEM certificate chain: the listeners speak TLS (with --tls-key)")
	keyFile := fs.String("tls-key", "", "PEM private key of --tls-cert")
	if err := fs.Parse(args); err != nil {
		return err
	}
	opts := []kfake.Opt{}
	if *certFile != "" || *keyFile != "" {
		cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
		if err != nil {
			return err
		}
		opts = append(opts, kfake.TLS(&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}))
	}
	raiseNoFile()
	var (
		mu  sync.Mutex
		lns []*advListener
	)
	listen := func(network, addr string) (net.Listener, error) {
		ln, err := net.Listen(network, addr)
		if err != nil {
			return nil, err
		}
		a := &advListener{Listener: ln}
		mu.Lock()
		lns = append(lns, a)
		mu.Unlock()
		return a, nil
	}
	c, err := kfake.NewCluster(append(opts,
		kfake.NumBrokers(*brokers),
		kfake.ListenFn(listen),
		kfake.BlackholeProduce(),
		kfake.SyntheticFetch(kfake.SyntheticBatch{RecordBytes: *recordBytes}),
		kfake.SeedTopics(int32(*partitions), produceTopic, consumeTopic),
	)...)
	if err != nil {
		return err
	}
	defer c.Close()
	mu.Lock()
	real := make([]string, len(lns))
	for i, l := range lns {
		real[i] = l.Listener.Addr().String()
	}
	mu.Unlock()
	fmt.Fprintf(stdout, "ready %s\n", strings.Join(real, ","))

	sc := bufio.NewScanner(stdin)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) != 2 || fields[0] != "advertise" {
			fmt.Fprintf(stdout, "error unknown command %q\n", sc.Text())
			continue
		}
		if err := advertise(lns, fields[1]); err != nil {
			fmt.Fprintf(stdout, "error %v\n", err)
			continue
		}
		fmt.Fprintln(stdout, "ok")
	}
	return nil // stdin closed: the bench is done or gone
}

func advertise(lns []*advListener, spec string) error {
	if spec == "real" {
		for _, l := range lns {
			l.adv.Store(nil)
		}
		return nil
	}
	addrs := strings.Split(spec, ",")
	if len(addrs) != len(lns) {
		return fmt.Errorf("%d addresses for %d brokers", len(addrs), len(lns))
	}
	resolved := make([]*net.TCPAddr, len(addrs))
	for i, a := range addrs {
		ta, err := net.ResolveTCPAddr("tcp", a)
		if err != nil {
			return err
		}
		if ta.Port == 0 {
			return errors.New("advertised port 0")
		}
		resolved[i] = ta
	}
	for i, l := range lns {
		l.adv.Store(resolved[i])
	}
	return nil
}

// advListener is a broker's listener whose Addr, which kfake reads every
// time it tells a client where a broker is (Metadata, FindCoordinator,
// DescribeCluster, KIP-951 endpoints), can be switched to another address.
// That is exactly what advertised.listeners does on a real broker placed
// behind a TCP forwarder: clients are unchanged, the cluster names the
// forwarder's ports.
type advListener struct {
	net.Listener
	adv atomic.Pointer[net.TCPAddr]
}

func (l *advListener) Addr() net.Addr {
	if a := l.adv.Load(); a != nil {
		return a
	}
	return l.Listener.Addr()
}
