package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/wherehouse/wherehouse/storage"
)

// Payload is how an event is delivered to webhooks, /ws/events and the
// JSON event topic.
type Payload struct {
	Type string `json:"_type"` // always "event"
	storage.Event
	ISOTST string `json:"isotst"` // TST as RFC 3339, UTC
	TID    string `json:"tid,omitempty"`
}

// NewPayload returns ev as delivered (tid: the device's tracker id, or "").
func NewPayload(ev storage.Event, tid string) Payload {
	return Payload{Type: "event", Event: ev, TID: tid, ISOTST: time.Unix(ev.TST, 0).UTC().Format(time.RFC3339)}
}

// Marshal renders ev as delivered.
func Marshal(ev storage.Event, tid string) []byte {
	b, _ := json.Marshal(NewPayload(ev, tid))
	return b
}

// transition renders a server event as the OwnTracks transition message
// the apps show as "<friend> entered <desc>" (booklet, _type=transition).
// Integers stay integers: Android rejects a fractional tst or acc.
func transition(ev storage.Event, tid string, fenceCreated int64) []byte {
	return TransitionPayload(ev, tid, "", fenceCreated)
}

// TransitionPayload renders ev as an OwnTracks transition message, with
// topic when set (HTTP-mode replies key friends by tid and topic).
func TransitionPayload(ev storage.Event, tid, topic string, fenceCreated int64) []byte {
	source := ServerMark
	if ev.Source == SourceDevice {
		source = ""
	}
	b, _ := json.Marshal(struct {
		Type   string  `json:"_type"`
		WTST   int64   `json:"wtst"`
		Lat    float64 `json:"lat"`
		Lon    float64 `json:"lon"`
		TST    int64   `json:"tst"`
		Acc    int64   `json:"acc"`
		TID    string  `json:"tid,omitempty"`
		Event  string  `json:"event"`
		Desc   string  `json:"desc"`
		T      string  `json:"t"`
		RID    string  `json:"rid"`
		Topic  string  `json:"topic,omitempty"`
		Source string  `json:"source,omitempty"`
	}{"transition", fenceCreated, ev.Lat, ev.Lon, ev.TST, int64(math.Round(ev.Acc)), tid, ev.Event, ev.FenceName, "c", ev.Fence, topic, source})
	return b
}

// ServerMark is the "source" of transitions wherehouse publishes itself;
// a server subscribed to the broker skips them (see IsServerTransition).
const ServerMark = "wherehouse"

// IsServerTransition reports whether a payload on an .../event topic was
// published by wherehouse, not by a device.
func IsServerTransition(topic string, payload []byte) bool {
	return strings.HasSuffix(topic, "/event") && jsonString(payload, "source") == ServerMark
}

func jsonString(payload []byte, name string) string {
	var m map[string]json.RawMessage
	if json.Unmarshal(payload, &m) != nil {
		return ""
	}
	var s string
	json.Unmarshal(m[name], &s)
	return s
}

// deliveries builds one webhook delivery per event and webhook whose
// owner may see the event.
func (e *Engine) deliveries(ctx context.Context, events []storage.Event) ([]storage.Delivery, error) {
	if len(events) == 0 {
		return nil, nil
	}
	hooks, err := e.store.ListWebhooks(ctx, "")
	if err != nil || len(hooks) == 0 {
		return nil, err
	}
	owners := map[string]storage.User{}
	now := e.opts.Now().UnixMilli()
	var out []storage.Delivery
	var errs []error
	for _, ev := range events {
		var body []byte
		for _, h := range hooks {
			owner, ok := owners[h.Owner]
			if !ok {
				if owner, err = e.store.User(ctx, h.Owner); err != nil {
					if !errors.Is(err, storage.ErrNotFound) {
						errs = append(errs, err)
					}
					owner = storage.User{Name: h.Owner} // a deleted user: own events only
				}
				owners[h.Owner] = owner
			}
			if !e.CanSee(owner, ev.User, ev.Device) {
				continue
			}
			if body == nil {
				body = Marshal(ev, e.tid(ctx, ev.User, ev.Device))
			}
			out = append(out, storage.Delivery{
				ID: newID(), Webhook: h.ID, Owner: h.Owner, Event: ev.ID, Body: body,
				Next: now, Status: storage.DeliveryPending, Created: now,
			})
		}
	}
	return out, errors.Join(errs...)
}

func (e *Engine) tid(ctx context.Context, user, device string) string {
	d, err := e.store.Device(ctx, user, device)
	if err != nil {
		return ""
	}
	return d.TID
}

// sender publishes recorded events on MQTT, off the evaluation path (a
// broker that is slow to confirm must not hold up fences).
func (e *Engine) sender() {
	for {
		select {
		case ev := <-e.send:
			e.publish(ev)
		case <-e.sendQuit:
			for { // what was recorded before shutdown still goes out
				select {
				case ev := <-e.send:
					e.publish(ev)
				default:
					return
				}
			}
		}
	}
}

func (e *Engine) publish(ev storage.Event) {
	if e.opts.Publisher == nil {
		return
	}
	ctx := context.Background()
	tid := e.tid(ctx, ev.User, ev.Device)
	if ev.Source == SourceServer && !strings.HasPrefix(ev.Fence, "wp:") {
		// Friends' apps show it; the device's own regions it reports itself.
		var created int64
		e.mu.Lock()
		if f, ok := e.fences[ev.Fence]; ok {
			created = f.Data.(*storage.Fence).Created.Unix()
		}
		e.mu.Unlock()
		topic := fmt.Sprintf("owntracks/%s/%s/event", ev.User, ev.Device)
		if err := e.opts.Publisher.Publish(topic, transition(ev, tid, created), false, 1); err != nil {
			e.m.publishErrors.Inc()
			e.log.Warn("transition not published", "topic", topic, "error", err)
		}
	}
	if e.opts.EventTopic != "" {
		topic := fmt.Sprintf("%s/%s/%s", e.opts.EventTopic, ev.User, ev.Device)
		if err := e.opts.Publisher.Publish(topic, Marshal(ev, tid), false, 1); err != nil {
			e.m.publishErrors.Inc()
			e.log.Warn("event not published", "topic", topic, "error", err)
		}
	}
}
