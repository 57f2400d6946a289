package broker

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"

	"github.com/gorilla/websocket"
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/storage/bolt"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/prometheus/client_golang/prometheus"
	bbolt "go.etcd.io/bbolt"

	"github.com/wherehouse/wherehouse/auth"
	"github.com/wherehouse/wherehouse/recorder"
	"github.com/wherehouse/wherehouse/storage"
)

// Defaults for Config.
const (
	DefaultMaxPacket    = 256 << 10
	DefaultMaxClients   = 10000
	DefaultMaxKeepalive = 7200 // seconds; Android's default keepalive is 3600
)

// Listener ids, as they appear in logs.
const (
	listenerTCP = "tcp"
	listenerTLS = "tls"
	listenerWS  = "ws"
)

// Config configures the embedded broker.
type Config struct {
	TCP          string // address, "" for none
	TLS          string // address, "" for none
	TLSConfig    *tls.Config
	MaxPacket    int    // bytes
	MaxClients   int    // connected at once
	MaxKeepalive uint16 // seconds; longer or absent keepalives are cut to this
	StateFile    string // retained messages and sessions; "" keeps them in memory
	// Devices, when set with StateFile, tells which devices have data:
	// saved retained messages of other devices are dropped at start.
	Devices DeviceLister
}

// DeviceLister lists a user's devices, by history and by state
// (storage.Store does both).
type DeviceLister interface {
	Devices(ctx context.Context, user string) ([]string, error)
	ListDevices(ctx context.Context, user string) ([]storage.Device, error)
}

// Embedded is the built-in MQTT broker.
type Embedded struct {
	srv      *mqtt.Server
	log      *slog.Logger
	hook     *hook
	upgrader websocket.Upgrader
	closeMu  sync.Mutex
	closed   bool
}

// NewEmbedded builds the broker; Start opens its listeners.
func NewEmbedded(cfg Config, accounts *auth.Accounts, policy *auth.Policy, rec *recorder.Recorder, reg prometheus.Registerer, log *slog.Logger) (*Embedded, error) {
	if cfg.MaxPacket <= 0 {
		cfg.MaxPacket = DefaultMaxPacket
	}
	if cfg.MaxClients <= 0 {
		cfg.MaxClients = DefaultMaxClients
	}
	if cfg.MaxKeepalive == 0 {
		cfg.MaxKeepalive = DefaultMaxKeepalive
	}
	caps := mqtt.NewDefaultServerCapabilities()
	caps.MaximumPacketSize = uint32(cfg.MaxPacket)
	caps.MaximumClients = int64(cfg.MaxClients)
	caps.MaximumSessionExpiryInterval = 30 * 24 * 3600
	srv := mqtt.New(&mqtt.Options{
		Capabilities:           caps,
		Logger:                 log.With("component", "mqtt"),
		InlineClient:           true,
		SysTopicResendInterval: 0,
	})
	e := &Embedded{
		srv: srv,
		log: log,
		upgrader: websocket.Upgrader{
			Subprotocols: []string{"mqtt", "mqttv3.1"},
			// MQTT authenticates inside the protocol (no cookies), so a
			// cross-origin page gains nothing by connecting.
			CheckOrigin: func(*http.Request) bool { return true },
		},
	}
	e.hook = newHook(srv, accounts, policy, rec, cfg.MaxKeepalive, reg, log)
	if err := srv.AddHook(e.hook, nil); err != nil {
		return nil, fmt.Errorf("add auth hook: %w", err)
	}
	if cfg.StateFile != "" {
		err := srv.AddHook(sessionStore{new(bolt.Hook)}, &bolt.Options{
			Path: cfg.StateFile,
			// Our own store is the durable record of what devices sent;
			// sessions only need to survive a restart, not a power cut.
			Options: &bbolt.Options{Timeout: lockTimeout, NoSync: true},
		})
		if err != nil {
			return nil, fmt.Errorf("open broker state %s: %w", cfg.StateFile, err)
		}
		if err := srv.AddHook(newRetainedStore(cfg.StateFile+".retained", cfg.Devices, log), nil); err != nil {
			return nil, fmt.Errorf("load retained messages: %w", err)
		}
	}
	if cfg.TCP != "" {
		if err := srv.AddListener(listeners.NewTCP(listeners.Config{ID: listenerTCP, Address: cfg.TCP})); err != nil {
			return nil, fmt.Errorf("listen for mqtt on %s: %w (is another broker such as mosquitto using the port? use --mqtt ADDR or --mqtt off)", cfg.TCP, err)
		}
	}
	if cfg.TLS != "" {
		if cfg.TLSConfig == nil {
			return nil, errors.New("mqtt tls listener needs a certificate and key (--tls-cert, --tls-key)")
		}
		l := listeners.NewTCP(listeners.Config{ID: listenerTLS, Address: cfg.TLS, TLSConfig: cfg.TLSConfig})
		if err := srv.AddListener(l); err != nil {
			return nil, fmt.Errorf("listen for mqtt over tls on %s: %w", cfg.TLS, err)
		}
	}
	return e, nil
}

// Start begins accepting clients; it returns at once.
func (e *Embedded) Start() error {
	if err := e.srv.Serve(); err != nil {
		return fmt.Errorf("start mqtt broker: %w", err)
	}
	return nil
}

// Addr returns the bound address of a listener ("tcp" or "tls"), which
// tells tests the port chosen for ":0".
func (e *Embedded) Addr(id string) string {
	l, ok := e.srv.Listeners.Get(id)
	if !ok {
		return ""
	}
	return l.Address()
}

// Close disconnects everyone and stops the listeners.
func (e *Embedded) Close() error {
	e.closeMu.Lock()
	defer e.closeMu.Unlock()
	if e.closed {
		return nil
	}
	e.closed = true
	return e.srv.Close()
}

// Publish sends a message from the server itself (not ingested again).
func (e *Embedded) Publish(topic string, payload []byte, retain bool, qos byte) error {
	return e.srv.Publish(topic, payload, retain, qos)
}

// ServeHTTP upgrades the request to a WebSocket and runs an MQTT session
// over it (MQTT over WebSocket on the HTTP port, path /mqtt).
func (e *Embedded) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c, err := e.upgrader.Upgrade(w, r, nil)
	if err != nil {
		e.log.Debug("mqtt websocket upgrade refused", "error", err)
		return
	}
	conn := &wsConn{Conn: c.UnderlyingConn(), ws: c}
	if err := e.srv.EstablishConnection(listenerWS, conn); err != nil && !errors.Is(err, net.ErrClosed) {
		e.log.Debug("mqtt websocket session ended", "error", err)
	}
}
