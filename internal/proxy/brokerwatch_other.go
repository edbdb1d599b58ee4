//go:build !linux

package proxy

import "net"

// BrokerWatch notices brokers closing idle connections on Linux (see
// brokerwatch_linux.go). Elsewhere it watches nothing: a client learns of
// such a close when its next request fails, as before.
type BrokerWatch struct{}

// NewBrokerWatch makes a watcher that does nothing on this platform.
func NewBrokerWatch() *BrokerWatch { return &BrokerWatch{} }

// Close does nothing on this platform.
func (w *BrokerWatch) Close() {}

type brokerWatchState struct{}

func (st *brokerWatchState) init(net.Conn) {}

func (w *BrokerWatch) start() error    { return nil }
func (w *BrokerWatch) arm(*Session)    {}
func (w *BrokerWatch) forget(*Session) {}
