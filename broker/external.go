package broker

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/wherehouse/wherehouse/events"
	"github.com/wherehouse/wherehouse/recorder"
)

// DefaultTopic is what wherehouse subscribes to on an external broker.
const DefaultTopic = "owntracks/#"

// ExternalConfig configures the client of an external broker.
type ExternalConfig struct {
	URL      string // tcp://, ssl://, ws://, wss://
	User     string
	Password string
	Topic    string // default DefaultTopic
	Share    string // shared-subscription group, "" for none
	ClientID string // default "wherehouse-<hostname>"
	TLS      *tls.Config
}

// External subscribes to an external broker and feeds the recorder.
type External struct {
	cfg ExternalConfig
	rec *recorder.Recorder
	log *slog.Logger

	mu     sync.RWMutex // guards client: Run sets it, Publish reads it
	client paho.Client

	seenMu sync.Mutex
	seen   map[string]deviceKey // topics received, for ForgetRetained
}

// NewExternal validates cfg and prepares the client; Run connects.
func NewExternal(cfg ExternalConfig, rec *recorder.Recorder, log *slog.Logger) (*External, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("broker url %q: want scheme://host:port, e.g. tcp://localhost:1883", cfg.URL)
	}
	switch u.Scheme {
	case "tcp", "ssl", "tls", "mqtt", "mqtts", "ws", "wss":
	default:
		return nil, fmt.Errorf("broker url %q: scheme must be tcp, ssl, ws or wss", cfg.URL)
	}
	if cfg.Topic == "" {
		cfg.Topic = DefaultTopic
	}
	if cfg.ClientID == "" {
		host, _ := os.Hostname()
		cfg.ClientID = "wherehouse-" + host
		if cfg.Share != "" {
			cfg.ClientID += "-" + cfg.Share
		}
	}
	return &External{cfg: cfg, rec: rec, log: log}, nil
}

// Filter is the subscription filter, with the shared-subscription prefix
// when a group is set.
func (e *External) Filter() string {
	if e.cfg.Share != "" {
		return "$share/" + e.cfg.Share + "/" + e.cfg.Topic
	}
	return e.cfg.Topic
}

// Run connects (retrying with backoff until ctx ends), subscribes at QoS 1
// with a persistent session, and returns when ctx is cancelled.
func (e *External) Run(ctx context.Context) error {
	opts := paho.NewClientOptions().
		AddBroker(e.cfg.URL).
		SetClientID(e.cfg.ClientID).
		SetUsername(e.cfg.User).
		SetPassword(e.cfg.Password).
		SetCleanSession(false). // the broker keeps our QoS 1 messages while we are away
		SetAutoReconnect(true). // after the first connection; before it, connect below retries
		SetMaxReconnectInterval(time.Minute).
		SetKeepAlive(30 * time.Second).
		SetOrderMatters(true).
		// Acks are sent by us after the durable commit, not by paho when
		// the handler returns.
		SetAutoAckDisabled(true).
		// With a persistent session the broker sends what it queued for
		// us right after CONNACK, before the subscription below has
		// registered its route in paho: without a default handler those
		// messages would go unhandled (and unacknowledged) until the
		// next reconnect.
		SetDefaultPublishHandler(e.onMessage).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			e.log.Warn("broker connection lost; reconnecting", "broker", e.cfg.URL, "error", err)
		}).
		SetOnConnectHandler(func(c paho.Client) {
			e.log.Info("connected to broker", "broker", e.cfg.URL, "client_id", e.cfg.ClientID)
			// Subscribing again after each reconnect is harmless with a
			// persistent session and needed when the broker lost it.
			tok := c.Subscribe(e.Filter(), 1, e.onMessage)
			go func() {
				switch {
				case !tok.WaitTimeout(30 * time.Second):
					e.log.Warn("broker subscription not confirmed", "filter", e.Filter())
				case tok.Error() != nil:
					e.log.Error("broker subscription refused", "filter", e.Filter(), "error", tok.Error())
				default:
					e.log.Info("subscribed", "filter", e.Filter())
				}
			}()
		}).
		SetReconnectingHandler(func(paho.Client, *paho.ClientOptions) {
			e.log.Debug("reconnecting to broker", "broker", e.cfg.URL)
		})
	if e.cfg.TLS != nil {
		opts.SetTLSConfig(e.cfg.TLS)
	}
	if u, err := url.Parse(e.cfg.URL); err == nil && u.Scheme != "ws" && u.Scheme != "wss" {
		opts.SetCustomOpenConnectionFn(dialBuffered)
	}
	opts.ConnectTimeout = 10 * time.Second
	e.mu.Lock()
	e.client = paho.NewClient(opts)
	e.mu.Unlock()
	if err := e.connect(ctx); err != nil {
		return nil // ctx ended before the first connection
	}
	<-ctx.Done()
	e.client.Disconnect(250)
	return nil
}

// connect tries until the first connection succeeds, logging why each
// attempt failed, with exponential backoff up to a minute.
func (e *External) connect(ctx context.Context) error {
	backoff := time.Second
	for {
		tok := e.client.Connect()
		select {
		case <-tok.Done():
		case <-ctx.Done():
			return ctx.Err()
		}
		if tok.Error() == nil {
			return nil
		}
		e.log.Error("cannot connect to broker; retrying", "broker", e.cfg.URL, "retry_in", backoff.String(), "error", explain(tok.Error()))
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return ctx.Err()
		}
		backoff = min(backoff*2, time.Minute)
	}
}

func (e *External) onMessage(_ paho.Client, m paho.Message) {
	if len(m.Payload()) == 0 {
		// A retained message being cleared (by ForgetRetained, echoed to
		// our subscription, or by another client), not a device message.
		m.Ack()
		return
	}
	e.see(m.Topic())
	if isCmdTopic(m.Topic()) {
		// Commands to devices (ours included: the broker echoes what we
		// publish back to our owntracks/# subscription) are not device
		// messages.
		m.Ack()
		return
	}
	if events.IsServerTransition(m.Topic(), m.Payload()) {
		// A fence event this server (or another instance) published.
		m.Ack()
		return
	}
	in := recorder.Incoming{Topic: m.Topic(), Payload: m.Payload(), Transport: "broker", Received: time.Now()}
	if m.Qos() == 0 {
		e.rec.Accept(in, nil)
		return
	}
	e.rec.Accept(in, func(error) { m.Ack() })
}

// publishTimeout bounds waiting for the broker to take a publish.
const publishTimeout = 5 * time.Second

// Publish sends a message from the server itself (a cmd to a device). It
// fails at once while not connected rather than queueing: callers have
// other ways to deliver.
func (e *External) Publish(topic string, payload []byte, retain bool, qos byte) error {
	e.mu.RLock()
	c := e.client
	e.mu.RUnlock()
	if c == nil || !c.IsConnectionOpen() {
		return fmt.Errorf("publish %s: not connected to broker %s", topic, e.cfg.URL)
	}
	tok := c.Publish(topic, qos, retain, payload)
	if !tok.WaitTimeout(publishTimeout) {
		return fmt.Errorf("publish %s: broker %s did not confirm within %s", topic, e.cfg.URL, publishTimeout)
	}
	if err := tok.Error(); err != nil {
		return fmt.Errorf("publish %s: %w", topic, err)
	}
	return nil
}

// isCmdTopic reports whether topic is owntracks/<user>/<device>/cmd, where
// the backend writes commands for the apps.
func isCmdTopic(topic string) bool {
	parts := strings.Split(topic, "/")
	return len(parts) == 4 && parts[0] == recorder.TopicPrefix && parts[3] == "cmd"
}

// explain turns common connection errors into advice.
func explain(err error) error {
	s := err.Error()
	switch {
	case strings.Contains(s, "not Authorized"), strings.Contains(s, "bad user name or password"), strings.Contains(s, "Bad Username or Password"):
		return fmt.Errorf("%w (check --broker-user and --broker-password)", err)
	case strings.Contains(s, "certificate"), strings.Contains(s, "tls"):
		return fmt.Errorf("%w (check the broker's TLS certificate)", err)
	case strings.Contains(s, "connection refused"), strings.Contains(s, "no such host"), strings.Contains(s, "i/o timeout"),
		errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%w (is the broker running and reachable at that address?)", err)
	}
	return err
}

// dialBuffered opens a TCP or TLS connection to the broker whose reads go
// through a buffer: paho reads each packet's fixed header a byte at a
// time, which on a bare socket is one system call per byte (a fifth of
// the CPU time at full load). WebSocket URLs keep paho's own dialer.
func dialBuffered(uri *url.URL, o paho.ClientOptions) (net.Conn, error) {
	d := &net.Dialer{Timeout: o.ConnectTimeout}
	var conn net.Conn
	var err error
	switch uri.Scheme {
	case "ssl", "tls", "mqtts":
		cfg := &tls.Config{}
		if o.TLSConfig != nil {
			cfg = o.TLSConfig.Clone()
		}
		if cfg.ServerName == "" {
			cfg.ServerName = uri.Hostname()
		}
		conn, err = tls.DialWithDialer(d, "tcp", uri.Host, cfg)
	default:
		conn, err = d.Dial("tcp", uri.Host)
	}
	if err != nil {
		return nil, err
	}
	return &bufferedConn{Conn: conn, r: bufio.NewReaderSize(conn, 64<<10)}, nil
}

// bufferedConn is a net.Conn that reads through r.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }
