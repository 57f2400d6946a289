package broker

// Clearing the retained messages of deleted devices.
//
// A retained message is the broker's copy of the last message a device
// published with the retain flag on a topic: its position on
// owntracks/<user>/<device>, its card on …/info, and whatever else the app
// retains. Every new subscriber gets these copies at once, so after a
// device's (or a user's) data is deleted they must go too, or a friend's app
// that subscribes later still receives the deleted position.
//
// MQTT clears a retained message with a zero-length retained publish on its
// topic, which the broker also passes on to the current subscribers
// [MQTT-3.3.1-10] [MQTT-3.3.1-11]; the OwnTracks apps take that empty
// message on a device's topic as "remove this friend" (owntracks/owntracks
// issue 25), so friends online at the time drop it from their map too.

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/wherehouse/wherehouse/recorder"
)

// Retained hands deletions to the broker in use, which clears the deleted
// devices' retained messages. The retention manager that calls Forget is
// built before the broker, so the zero value does nothing until Use.
type Retained struct {
	clear atomic.Pointer[func(ctx context.Context, user, device string)]
}

// Use sets what Forget calls: Embedded.ForgetRetained or
// External.ForgetRetained.
func (r *Retained) Use(clear func(ctx context.Context, user, device string)) {
	r.clear.Store(&clear)
}

// Forget clears the retained messages of user's device, or of every device
// of user when device is "". It is a retention.Options.Forget hook, called
// after the device's data was deleted.
func (r *Retained) Forget(ctx context.Context, user, device string) {
	if f := r.clear.Load(); f != nil {
		(*f)(ctx, user, device)
	}
}

// ofDevice reports whether topic is owntracks/<user>/<device>[/...], any
// device of user when device is "". Topics keep the spelling the app
// published with (owntracks/Alice/iPhone); user and device are lower case,
// as recorder.ParseTopic makes them.
func ofDevice(topic, user, device string) bool {
	u, d, err := recorder.ParseTopic(topic)
	return err == nil && u == user && (device == "" || d == device)
}

// ForgetRetained clears the embedded broker's retained messages on
// owntracks/<user>/<device> and below it (every device of user when device
// is ""), whatever the case of their topics. The zero-length publish goes
// through mochi (as the server's own inline client, past the ACL and the
// recorder), which drops its retained copy and tells retainedStore, so the
// messages do not come back after a restart.
func (e *Embedded) ForgetRetained(_ context.Context, user, device string) {
	user, device = strings.ToLower(user), strings.ToLower(device)
	n := 0
	for topic := range e.srv.Topics.Retained.GetAll() {
		if !ofDevice(topic, user, device) {
			continue
		}
		if err := e.srv.Publish(topic, nil, true, 1); err != nil {
			e.log.Error("retained message not cleared", "user", user, "device", device, "topic", topic, "error", err)
			continue
		}
		n++
	}
	if n > 0 {
		e.log.Info("retained messages cleared", "user", user, "device", device, "topics", n)
	}
}

// deviceSubtopics are where the OwnTracks apps publish, below the base
// topic owntracks/<user>/<device> (booklet, tech/json, "Topics"); cmd is
// where backends write to the device. On an external broker, whose retained
// messages wherehouse cannot list, a deleted device's are cleared there.
var deviceSubtopics = []string{"", "/info", "/event", "/waypoint", "/waypoints", "/status", "/step", "/beacon", "/dump", "/cmd"}

// maxSeenTopics bounds how many topics an External remembers, so a
// client publishing to ever new topics cannot grow its memory; past it,
// deletions fall back to the lower-case deviceSubtopics.
const maxSeenTopics = 1 << 16

// deviceKey is a device by its lower-case user and device names.
type deviceKey struct{ user, device string }

// see remembers the topic of a message from the external broker, so that
// deleting its device clears it in the spelling it has (owntracks/Alice/
// iPhone) and deleting a user finds its devices. The broker delivers every
// retained message again when wherehouse subscribes, after each (re)start,
// so, without a shared subscription, every retained topic is seen.
func (e *External) see(topic string) {
	e.seenMu.Lock()
	defer e.seenMu.Unlock()
	if _, ok := e.seen[topic]; ok || len(e.seen) >= maxSeenTopics {
		return
	}
	u, d, err := recorder.ParseTopic(topic)
	if err != nil {
		return
	}
	if e.seen == nil {
		e.seen = map[string]deviceKey{}
	}
	e.seen[topic] = deviceKey{u, d}
}

// ForgetRetained clears the external broker's retained messages of user's
// device (every device of user when device is ""), with a zero-length
// retained publish at QoS 1 on every topic wherehouse has seen of it, and
// on the base topic and deviceSubtopics in lower case. A topic without a
// retained message is not harmed: subscribers get the empty message only.
// With a shared subscription each instance sees part of the stream, so a
// user's devices and topics in another spelling may be missed.
func (e *External) ForgetRetained(ctx context.Context, user, device string) {
	user, device = strings.ToLower(user), strings.ToLower(device)
	topics := map[string]bool{}
	devices := map[string]bool{}
	if device != "" {
		devices[device] = true
	}
	e.seenMu.Lock()
	for t, k := range e.seen {
		if k.user == user && (device == "" || k.device == device) {
			topics[t] = true
			devices[k.device] = true
		}
	}
	e.seenMu.Unlock()
	for d := range devices {
		for _, sub := range deviceSubtopics {
			topics[recorder.TopicPrefix+"/"+user+"/"+d+sub] = true
		}
	}
	if len(topics) == 0 {
		return
	}
	e.mu.RLock()
	c := e.client
	e.mu.RUnlock()
	if c == nil || !c.IsConnectionOpen() {
		e.log.Error("retained messages not cleared: not connected to the broker; clear them there (mosquitto_pub -r -n -t TOPIC)",
			"broker", e.cfg.URL, "user", user, "device", device, "topics", len(topics))
		return
	}
	toks := make(map[string]paho.Token, len(topics))
	for t := range topics {
		toks[t] = c.Publish(t, 1, true, []byte{})
	}
	ctx, cancel := context.WithTimeout(ctx, publishTimeout)
	defer cancel()
	n := 0
	for t, tok := range toks {
		if err := waitToken(ctx, tok); err != nil {
			e.log.Error("retained message not cleared; clear it on the broker (mosquitto_pub -r -n -t TOPIC)",
				"broker", e.cfg.URL, "topic", t, "error", err)
			continue
		}
		n++
		e.seenMu.Lock()
		delete(e.seen, t)
		e.seenMu.Unlock()
	}
	e.log.Info("retained messages cleared", "user", user, "device", device, "topics", n)
}

// waitToken waits for the broker to confirm a publish, until ctx ends.
func waitToken(ctx context.Context, tok paho.Token) error {
	select {
	case <-tok.Done():
		return tok.Error()
	case <-ctx.Done():
		select {
		case <-tok.Done():
			return tok.Error()
		default:
		}
		return fmt.Errorf("not confirmed: %w", ctx.Err())
	}
}
