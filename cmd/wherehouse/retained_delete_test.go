package main

import (
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// retainedSentinel is a topic deeper than the filters retainedOn checks,
// so its retained message arrives through its own subscription only.
const retainedSentinel = "owntracks/bob/phone/test/sentinel"

// retainedOn subscribes to broker as a friend's app does (owntracks/+/+
// for positions, owntracks/+/+/+ for cards and the rest) and returns the
// retained messages it is sent, topic -> payload. It has them all when the
// sentinel's retained message arrives: a broker sends each subscription's
// retained messages in turn, and the sentinel is subscribed to last.
func retainedOn(t *testing.T, broker, user, password string) map[string]string {
	t.Helper()
	c := mustMQTT(t, broker, fmt.Sprintf("retained-check-%d", time.Now().UnixNano()), user, password)
	defer c.Disconnect(100)
	var mu sync.Mutex
	got := map[string]string{}
	done := make(chan struct{})
	var once sync.Once
	handler := func(_ paho.Client, m paho.Message) {
		if !m.Retained() {
			return
		}
		if m.Topic() == retainedSentinel {
			once.Do(func() { close(done) })
			return
		}
		mu.Lock()
		got[m.Topic()] = string(m.Payload())
		mu.Unlock()
	}
	for _, f := range []string{"owntracks/+/+", "owntracks/+/+/+", retainedSentinel} {
		// QoS 0: this paho client, subscribing three times in a row, was
		// seen holding back QoS 1 deliveries (mosquitto_sub -q 1 gets them
		// all from the same broker); what is retained does not depend on it.
		tok := c.Subscribe(f, 0, handler)
		if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("subscribe %s: %v", f, tok.Error())
		}
	}
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Fatalf("the sentinel's retained message (%s) did not arrive within 15s", retainedSentinel)
	}
	mu.Lock()
	defer mu.Unlock()
	return maps.Clone(got)
}

// checkRetained fails unless the retained messages got are on exactly
// the topics want, with payloads that contain their tid.
func checkRetained(t *testing.T, when string, got map[string]string, want map[string]string) {
	t.Helper()
	for topic, tid := range want {
		p, ok := got[topic]
		switch {
		case !ok:
			t.Errorf("%s: no retained message on %s, which was not deleted", when, topic)
		case !strings.Contains(p, `"`+tid+`"`):
			t.Errorf("%s: retained message on %s is %s, want tid %s", when, topic, p, tid)
		}
	}
	for topic, p := range got {
		if _, ok := want[topic]; !ok {
			t.Errorf("%s: retained message on %s survived the deletion: %s", when, topic, p)
		}
	}
}

func card(name, tid string) string {
	return fmt.Sprintf(`{"_type":"card","name":%q,"tid":%q}`, name, tid)
}

// TestRetainedClearedOnDelete deletes devices and a user on the embedded
// broker by every path (CLI over the control socket, HTTP API, user del
// --data-too, CLI on the store while the server is stopped) and checks
// that a new subscriber gets none of their retained messages, before and
// after a restart, while the other devices' are still delivered.
func TestRetainedClearedOnDelete(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir)
	pass := map[string]string{"alice": "alice-pass-1", "bob": "bob-pass-12", "carol": "carol-pass-1"}
	for name, p := range pass {
		s.addUser(name, p)
	}
	broker := "tcp://" + s.MQTT
	now := time.Now().Unix()
	alice := mustMQTT(t, broker, "alice-app", "alice", pass["alice"])
	// The card on the topic as an app may spell it: names are lower-cased
	// in the store, not in the broker.
	publish(t, alice, "owntracks/Alice/Phone/info", 1, true, card("Alice", "ac"))
	publish(t, alice, "owntracks/alice/phone", 1, true, location(52.5, 13.4, now, "ap"))
	publish(t, alice, "owntracks/alice/tablet/info", 1, true, card("Alice", "tc"))
	publish(t, alice, "owntracks/alice/tablet", 1, true, location(52.5, 13.4, now, "at"))
	publish(t, alice, "owntracks/alice/watch", 1, true, location(52.5, 13.4, now, "aw"))
	bob := mustMQTT(t, broker, "bob-app", "bob", pass["bob"])
	publish(t, bob, "owntracks/bob/phone", 1, true, location(48.1, 11.6, now, "bp"))
	publish(t, bob, retainedSentinel, 1, true, fmt.Sprintf(`{"_type":"sentinel","tst":%d}`, now))
	carol := mustMQTT(t, broker, "carol-app", "carol", pass["carol"])
	publish(t, carol, "owntracks/carol/phone", 1, true, location(40.4, -3.7, now, "cp"))
	publish(t, carol, "owntracks/carol/phone/info", 1, true, card("Carol", "cc"))

	checkRetained(t, "before deleting", retainedOn(t, broker, "admin", adminPassword), map[string]string{
		"owntracks/Alice/Phone/info": "ac", "owntracks/alice/phone": "ap",
		"owntracks/alice/tablet/info": "tc", "owntracks/alice/tablet": "at",
		"owntracks/alice/watch": "aw", "owntracks/bob/phone": "bp",
		"owntracks/carol/phone": "cp", "owntracks/carol/phone/info": "cc",
	})

	// A friend's app online during the deletion is told to drop the
	// device: an empty message on its topic.
	var mu sync.Mutex
	cleared := map[string]bool{}
	friend := mustMQTT(t, broker, "friend-app", "admin", adminPassword)
	tok := friend.Subscribe("owntracks/+/+", 1, func(_ paho.Client, m paho.Message) {
		if len(m.Payload()) == 0 {
			mu.Lock()
			cleared[m.Topic()] = true
			mu.Unlock()
		}
	})
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}

	runCLI(t, "", "delete", "--user", "alice", "--device", "phone", "--all", "--data", dir)
	if code, body := s.send(http.MethodDelete, "alice", pass["alice"], "/api/v1/devices/alice/tablet", ""); code != http.StatusOK {
		t.Fatalf("DELETE /api/v1/devices/alice/tablet: %d %s", code, body)
	}
	runCLI(t, "", "user", "del", "carol", "--data-too", "--data", dir)

	kept := map[string]string{"owntracks/alice/watch": "aw", "owntracks/bob/phone": "bp"}
	checkRetained(t, "after deleting", retainedOn(t, broker, "admin", adminPassword), kept)
	eventually(t, "friends told to drop the deleted devices", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return cleared["owntracks/alice/phone"] && cleared["owntracks/alice/tablet"] && cleared["owntracks/carol/phone"]
	})
	mu.Lock()
	if cleared["owntracks/alice/watch"] || cleared["owntracks/bob/phone"] {
		t.Errorf("devices not deleted were cleared too: %v", cleared)
	}
	mu.Unlock()

	// The broker's saved retained messages are rewritten without them
	// (at shutdown at the latest)...
	s.stop()
	saved, err := os.ReadFile(filepath.Join(dir, brokerStateFile+".retained"))
	if err != nil {
		t.Fatal(err)
	}
	for _, topic := range []string{"owntracks/Alice/Phone/info", "owntracks/alice/phone\"", "owntracks/alice/tablet", "owntracks/carol/"} {
		if strings.Contains(string(saved), topic) {
			t.Errorf("the saved retained messages still have %s", topic)
		}
	}
	if !strings.Contains(string(saved), "owntracks/alice/watch") {
		t.Error("the saved retained messages lost owntracks/alice/watch")
	}
	// ... and a device deleted while the server is stopped, on the store
	// itself, loses its retained messages at the next start.
	runCLI(t, "", "delete", "--user", "alice", "--device", "watch", "--all", "--data", dir)
	s = startServer(t, dir)
	checkRetained(t, "after a restart", retainedOn(t, "tcp://"+s.MQTT, "admin", adminPassword),
		map[string]string{"owntracks/bob/phone": "bp"})
}

// TestRetainedClearedOnDeleteExternalBroker deletes devices and a user
// while wherehouse uses an external broker (mosquitto): it clears the
// retained messages there with empty retained publishes, on the topics it
// has seen whatever their spelling, and leaves the others alone.
func TestRetainedClearedOnDeleteExternalBroker(t *testing.T) {
	addr := startMosquitto(t)
	dir := t.TempDir()
	s := startServer(t, dir, "--broker", "tcp://"+addr, "--mqtt", "off", "--broker-client-id", "wh-retained")
	eventually(t, "subscribed to mosquitto", func() bool { return containsLine(s.err.String(), "msg=subscribed") })
	broker := "tcp://" + addr
	app := mustMQTT(t, broker, "apps", "", "")
	now := time.Now().Unix()
	publish(t, app, "owntracks/Alice/Phone/info", 1, true, card("Alice", "ac"))
	publish(t, app, "owntracks/alice/phone", 1, true, location(52.5, 13.4, now, "ap"))
	publish(t, app, "owntracks/alice/tablet", 1, true, location(52.5, 13.4, now, "at"))
	publish(t, app, "owntracks/carol/Car/info", 1, true, card("Carol", "cc"))
	publish(t, app, "owntracks/carol/Car", 1, true, location(40.4, -3.7, now, "cp"))
	publish(t, app, "owntracks/bob/phone", 1, true, location(48.1, 11.6, now, "bp"))
	publish(t, app, retainedSentinel, 1, true, fmt.Sprintf(`{"_type":"sentinel","tst":%d}`, now))
	// Stored means seen: wherehouse handles the stream in order.
	eventually(t, "positions stored", func() bool {
		return s.locations("admin", adminPassword, "alice", "phone").Count == 1 &&
			s.locations("admin", adminPassword, "alice", "tablet").Count == 1 &&
			s.locations("admin", adminPassword, "carol", "car").Count == 1 &&
			s.locations("admin", adminPassword, "bob", "phone").Count == 1
	})

	runCLI(t, "", "delete", "--user", "alice", "--device", "phone", "--all", "--data", dir)
	if code, body := s.send(http.MethodDelete, "admin", adminPassword, "/api/v1/devices/alice/tablet", ""); code != http.StatusOK {
		t.Fatalf("DELETE /api/v1/devices/alice/tablet: %d %s", code, body)
	}
	runCLI(t, "", "delete", "--user", "carol", "--all", "--data", dir)

	checkRetained(t, "after deleting", retainedOn(t, broker, "", ""), map[string]string{"owntracks/bob/phone": "bp"})
	if strings.Contains(s.err.String(), "not cleared") {
		t.Errorf("clearing reported a failure:\n%s", s.err.String())
	}
}
