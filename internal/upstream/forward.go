package upstream

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"

	"golang.org/x/net/proxy"
)

// maxConnectResponse bounds what an HTTP forward proxy may send before its
// CONNECT answer ends.
const maxConnectResponse = 16 << 10

// contextDialer dials TCP connections towards brokers.
type contextDialer interface {
	DialContext(ctx context.Context, network, addr string) (net.Conn, error)
}

// newForwardDialer is how broker connections leave the proxy: straight
// (direct), or through --forward-proxy, a SOCKS5 (socks5://) or HTTP
// CONNECT (http://) proxy with optional user:password. The broker's host
// name is resolved by the forward proxy, as clients behind it expect.
func newForwardDialer(raw string, direct *net.Dialer) (contextDialer, error) {
	if raw == "" {
		return direct, nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("--forward-proxy: not a URL")
	}
	switch u.Scheme {
	case "socks5", "socks5h":
		var auth *proxy.Auth
		if u.User != nil {
			pass, _ := u.User.Password()
			auth = &proxy.Auth{User: u.User.Username(), Password: pass}
		}
		d, err := proxy.SOCKS5("tcp", u.Host, auth, direct)
		if err != nil {
			return nil, fmt.Errorf("--forward-proxy %s: %w", u.Redacted(), err)
		}
		cd, ok := d.(proxy.ContextDialer)
		if !ok {
			return nil, errors.New("--forward-proxy: SOCKS5 dialer without context support")
		}
		return socksDialer{cd, u.Redacted()}, nil
	case "http":
		return &connectDialer{proxy: u.Host, user: u.User, direct: direct, name: u.Redacted()}, nil
	}
	return nil, fmt.Errorf("--forward-proxy %s: scheme must be socks5 or http", u.Redacted())
}

// socksDialer names the forward proxy in its errors (never its password).
type socksDialer struct {
	d    proxy.ContextDialer
	name string
}

func (s socksDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := s.d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, fmt.Errorf("through SOCKS5 forward proxy %s: %w", s.name, err)
	}
	return c, nil
}

// connectDialer opens a tunnel with HTTP CONNECT (RFC 9110 §9.3.6).
type connectDialer struct {
	proxy  string
	user   *url.Userinfo
	direct *net.Dialer
	name   string // the proxy URL without its password, for errors
}

func (d *connectDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := d.direct.DialContext(ctx, network, d.proxy)
	if err != nil {
		return nil, fmt.Errorf("HTTP forward proxy %s: %w", d.name, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	} else {
		_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	}
	tunnel, err := d.connect(c, addr)
	_ = c.SetDeadline(time.Time{})
	if err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("HTTP forward proxy %s: CONNECT %s: %w", d.name, addr, err)
	}
	return tunnel, nil
}

func (d *connectDialer) connect(c net.Conn, addr string) (net.Conn, error) {
	req := "CONNECT " + addr + " HTTP/1.1\r\nHost: " + addr + "\r\n"
	if d.user != nil {
		pass, _ := d.user.Password()
		req += "Proxy-Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(d.user.Username()+":"+pass)) + "\r\n"
	}
	if _, err := io.WriteString(c, req+"\r\n"); err != nil {
		return nil, err
	}
	br := bufio.NewReader(io.LimitReader(c, maxConnectResponse))
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		return nil, fmt.Errorf("read answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("refused: %s", resp.Status)
	}
	// A 200 to CONNECT has no body: what follows is the tunnel.
	if br.Buffered() > 0 {
		// Bytes past the answer already belong to the tunnel.
		rest, _ := br.Peek(br.Buffered())
		return &prefixedConn{Conn: c, prefix: append([]byte(nil), rest...)}, nil
	}
	return c, nil
}

// prefixedConn reads prefix before the connection itself.
type prefixedConn struct {
	net.Conn
	prefix []byte
}

func (p *prefixedConn) Read(b []byte) (int, error) {
	if len(p.prefix) > 0 {
		n := copy(b, p.prefix)
		p.prefix = p.prefix[n:]
		return n, nil
	}
	return p.Conn.Read(b)
}
