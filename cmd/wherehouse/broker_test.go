package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// startMosquitto runs a real mosquitto on a loopback port and returns its
// address.
func startMosquitto(t *testing.T) string {
	t.Helper()
	bin := needTool(t, "mosquitto", "mosquitto")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	conf := filepath.Join(t.TempDir(), "mosquitto.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\n", port)), 0o600)
	cmd := exec.Command(bin, "-c", conf)
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addr := "127.0.0.1:" + strconv.Itoa(port)
	eventually(t, "mosquitto listening", func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return addr
}

func TestExternalBroker(t *testing.T) {
	addr := startMosquitto(t)
	s := startServer(t, t.TempDir(), "--broker", "tcp://"+addr, "--mqtt", "off", "--broker-client-id", "wh-test")
	if s.MQTT != "" {
		t.Errorf("embedded broker listening on %s despite --broker", s.MQTT)
	}
	eventually(t, "connected to mosquitto", func() bool {
		return containsLine(s.err.String(), "msg=subscribed")
	})
	// Publish to mosquitto like an app; wherehouse stores it.
	pub := mustMQTT(t, "tcp://"+addr, "app-1", "", "")
	now := time.Now().Unix()
	for i := range 20 {
		publish(t, pub, "owntracks/jane/phone", 1, true, location(45, 7, now-int64(i), "jp"))
	}
	publish(t, pub, "owntracks/jane/phone", 1, false, "garbage")
	eventually(t, "20 locations stored from the external broker", func() bool {
		return s.locations("admin", adminPassword, "jane", "phone").Count == 20
	})
	// Messages sent while wherehouse is down are kept by the broker for
	// its persistent session and stored after it comes back.
	dir := s.dir
	s.stop()
	for i := range 5 {
		publish(t, pub, "owntracks/jane/phone", 1, false, location(46, 8, now+1+int64(i), "jp"))
	}
	s = startServer(t, dir, "--broker", "tcp://"+addr, "--mqtt", "off", "--broker-client-id", "wh-test")
	eventually(t, "messages queued while down", func() bool {
		return s.locations("admin", adminPassword, "jane", "phone").Count == 25
	})
}

func TestExternalBrokerSharedSubscription(t *testing.T) {
	addr := startMosquitto(t)
	a := startServer(t, t.TempDir(), "--broker", "tcp://"+addr, "--mqtt", "off", "--broker-share", "wh", "--broker-client-id", "wh-a")
	b := startServer(t, t.TempDir(), "--broker", "tcp://"+addr, "--mqtt", "off", "--broker-share", "wh", "--broker-client-id", "wh-b")
	for _, s := range []*testServer{a, b} {
		eventually(t, "subscribed", func() bool { return containsLine(s.err.String(), "msg=subscribed") })
	}
	pub := mustMQTT(t, "tcp://"+addr, "app-2", "", "")
	now := time.Now().Unix()
	const n = 40
	for i := range n {
		publish(t, pub, "owntracks/kim/phone", 1, false, location(1, 1, now-int64(i), "kp"))
	}
	count := func(s *testServer) int { return s.locations("admin", adminPassword, "kim", "phone").Count }
	eventually(t, "all messages stored exactly once across the group", func() bool { return count(a)+count(b) == n })
	if count(a) == 0 || count(b) == 0 {
		t.Errorf("the group did not split the stream: %d and %d", count(a), count(b))
	}
}

func containsLine(log, s string) bool {
	return strings.Contains(log, s)
}

func TestExternalBrokerExplainsFailures(t *testing.T) {
	// Nothing listens on this port: the log says so and what to check.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := ln.Addr().String()
	ln.Close()
	s := startServer(t, t.TempDir(), "--broker", "tcp://"+dead, "--mqtt", "off")
	eventually(t, "a clear connection error", func() bool {
		return containsLine(s.err.String(), "cannot connect to broker") && containsLine(s.err.String(), "reachable")
	})
	// The HTTP API keeps serving meanwhile.
	if code, _ := s.get("", "", "/healthz"); code != 200 {
		t.Errorf("/healthz while the broker is down = %d", code)
	}
}
