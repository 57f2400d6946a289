package broker

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/wherehouse/wherehouse/auth"
	"github.com/wherehouse/wherehouse/recorder"
	"github.com/wherehouse/wherehouse/storage"
)

// lockTimeout bounds waiting for the broker state file's lock.
const lockTimeout = 200 * time.Millisecond

// hook is wherehouse's auth, ACL and ingest hook. It denies by default:
// mochi's own auth ledger allows when no rule matches, so it is not used.
type hook struct {
	mqtt.HookBase
	srv          *mqtt.Server
	accounts     *auth.Accounts
	policy       *auth.Policy
	rec          *recorder.Recorder
	maxKeepalive uint16
	log          *slog.Logger

	users sync.Map // *mqtt.Client -> storage.User

	logins *prometheus.CounterVec
	denied *prometheus.CounterVec
}

func newHook(srv *mqtt.Server, accounts *auth.Accounts, policy *auth.Policy, rec *recorder.Recorder, maxKeepalive uint16, reg prometheus.Registerer, log *slog.Logger) *hook {
	h := &hook{
		srv: srv, accounts: accounts, policy: policy, rec: rec, maxKeepalive: maxKeepalive, log: log,
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wherehouse_mqtt_logins_total", Help: "MQTT connection attempts, by result.",
		}, []string{"result"}),
		denied: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wherehouse_mqtt_denied_total", Help: "MQTT publishes, subscriptions and deliveries refused by the ACL.",
		}, []string{"action"}),
	}
	if reg != nil {
		reg.MustRegister(h.logins, h.denied)
	}
	return h
}

func (h *hook) ID() string { return "wherehouse" }

func (h *hook) Provides(b byte) bool {
	return bytes.Contains([]byte{
		mqtt.OnConnect, mqtt.OnConnectAuthenticate, mqtt.OnACLCheck,
		mqtt.OnPublish, mqtt.OnDisconnect, mqtt.OnPacketEncode, mqtt.OnWillSent,
	}, []byte{b})
}

// OnConnect cuts absent or very long keepalives so dead connections are
// noticed (mochi drops a client after 1.5 keepalives of silence).
func (h *hook) OnConnect(cl *mqtt.Client, pk packets.Packet) error {
	if cl.State.Keepalive == 0 || cl.State.Keepalive > h.maxKeepalive {
		cl.State.Keepalive = h.maxKeepalive
	}
	return nil
}

// OnConnectAuthenticate checks the user name and password of CONNECT.
func (h *hook) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	name := strings.ToLower(string(pk.Connect.Username))
	if name == "" {
		h.logins.WithLabelValues("anonymous").Inc()
		h.log.Warn("mqtt login denied", "reason", "no user name", "client", cl.ID, "remote", cl.Net.Remote)
		return false
	}
	u, err := h.accounts.Authenticate(context.Background(), name, string(pk.Connect.Password))
	if err != nil {
		h.logins.WithLabelValues("denied").Inc()
		h.log.Warn("mqtt login denied", "user", name, "client", cl.ID, "remote", cl.Net.Remote, "error", err)
		return false
	}
	// mochi does not check the Will topic against the ACL; a Will on
	// someone else's topic would be published for them.
	if pk.Connect.WillFlag && !auth.CanPublish(u, pk.Connect.WillTopic) {
		h.logins.WithLabelValues("denied").Inc()
		h.log.Warn("mqtt login denied", "user", name, "client", cl.ID, "reason", "will topic not allowed", "topic", pk.Connect.WillTopic)
		return false
	}
	h.logins.WithLabelValues("ok").Inc()
	h.users.Store(cl, u)
	h.log.Info("mqtt client connected", "user", u.Name, "client", cl.ID, "listener", cl.Net.Listener, "remote", cl.Net.Remote)
	return true
}

func (h *hook) OnDisconnect(cl *mqtt.Client, err error, expire bool) {
	if _, ok := h.users.LoadAndDelete(cl); ok {
		h.log.Info("mqtt client disconnected", "client", cl.ID, "error", err)
	}
}

func (h *hook) user(cl *mqtt.Client) (storage.User, bool) {
	v, ok := h.users.Load(cl)
	if !ok {
		return storage.User{}, false
	}
	return v.(storage.User), true
}

// OnACLCheck decides publishes (write), subscriptions (a filter) and each
// delivery (a topic). Deliveries are checked per message, so what a user
// may read is decided when the message flows, not only at subscribe time.
func (h *hook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	if cl.Net.Inline {
		return true
	}
	u, ok := h.user(cl)
	if !ok {
		return false
	}
	var allowed bool
	action := "read"
	switch {
	case write:
		action = "publish"
		allowed = auth.CanPublish(u, topic)
	case strings.ContainsAny(topic, "+#"):
		action = "subscribe"
		allowed = h.policy.CanSubscribe(u, topic)
	default:
		_, allowed = h.policy.CanRead(u, topic)
	}
	if !allowed {
		h.denied.WithLabelValues(action).Inc()
		if action != "read" {
			h.log.Warn("mqtt "+action+" denied", "user", u.Name, "client", cl.ID, "topic", topic)
		}
	}
	return allowed
}

// OnPublish hands each client message to the recorder.
//
// QoS 1 (what the apps use): the message is queued and this returns at once
// with ErrRejectPacket so mochi sends no PUBACK of its own; the recorder
// calls back after the durable group commit, in the order received, and
// only then is the PUBACK written and the message relayed (and retained).
// That keeps many messages in flight per client while never acknowledging
// anything not yet on disk.
//
// QoS 0 is queued without waiting. QoS 2 waits for the commit before mochi
// sends PUBREC. A message that is not valid is dropped (not relayed) but
// still acknowledged: MQTT 3.1.1 cannot refuse one PUBLISH, and an app that
// never gets its ack resends forever.
func (h *hook) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if cl.Net.Inline {
		return pk, nil
	}
	in := recorder.Incoming{Topic: pk.TopicName, Payload: pk.Payload, Transport: "mqtt", Received: time.Now()}
	switch pk.FixedHeader.Qos {
	case 0:
		m, err := h.rec.AcceptMessage(in, nil)
		if err != nil {
			return pk, packets.ErrRejectPacket
		}
		pk.Payload = m.Payload // decrypted
		return pk, nil
	case 1:
		id, topic, retain := pk.PacketID, pk.TopicName, pk.FixedHeader.Retain
		var payload []byte // set below, before the callback can run
		var ready = make(chan struct{})
		m, _ := h.rec.AcceptMessage(in, func(err error) {
			// Relay first, so that once the sender has its ack the message
			// is queued for every subscriber. Success is only ever reported
			// from the pipeline after AcceptMessage has returned, so waiting
			// for payload cannot deadlock; a failure may be reported
			// synchronously (recorder closed) and must not wait.
			if err == nil {
				<-ready
				h.relay(topic, payload, retain)
			} else if !errors.Is(err, recorder.ErrInvalid) {
				h.log.Error("message acknowledged but not stored", "client", cl.ID, "topic", topic, "error", err)
			}
			ack := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Puback}, PacketID: id}
			if err := cl.WritePacket(ack); err != nil {
				h.log.Debug("puback not sent", "client", cl.ID, "error", err)
			}
		})
		payload = m.Payload
		close(ready)
		return pk, packets.ErrRejectPacket
	default:
		errc := make(chan error, 1)
		m, err := h.rec.AcceptMessage(in, func(err error) { errc <- err })
		if err != nil || <-errc != nil {
			return pk, packets.ErrRejectPacket
		}
		pk.Payload = m.Payload
		return pk, nil
	}
}

// OnPacketEncode coarsens a delivery to a viewer whose share has a
// precision, just before it is written: the exact position never leaves
// the server for them, retained messages included.
func (h *hook) OnPacketEncode(cl *mqtt.Client, pk packets.Packet) packets.Packet {
	if pk.FixedHeader.Type != packets.Publish || cl.Net.Inline || len(pk.Payload) == 0 {
		// An empty payload clears a retained message (ForgetRetained):
		// nothing to coarsen, and the apps must get it empty.
		return pk
	}
	u, ok := h.user(cl)
	if !ok {
		return pk
	}
	g, ok := h.policy.CanRead(u, pk.TopicName)
	if !ok {
		// Checked before delivery; a share revoked in between gets nothing.
		pk.Payload = []byte("{}")
		return pk
	}
	if g.Precision > 0 {
		pk.Payload, _, _ = auth.Coarsen(pk.Payload, 0, 0, g.Precision)
		if pk.Payload == nil {
			pk.Payload = []byte("{}")
		}
	}
	return pk
}

func (h *hook) relay(topic string, payload []byte, retain bool) {
	if err := h.srv.Publish(topic, payload, retain, 1); err != nil {
		h.log.Debug("relay failed", "topic", topic, "error", err)
	}
}

// OnWillSent records a Last Will the broker published for a client that
// went away without DISCONNECT: mochi publishes it without OnPublish.
func (h *hook) OnWillSent(cl *mqtt.Client, pk packets.Packet) {
	h.rec.Accept(recorder.Incoming{Topic: pk.TopicName, Payload: pk.Payload, Transport: "mqtt", Received: time.Now()}, nil)
}
