package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// TestKill9LosesNothingAcknowledged publishes QoS 1 messages from several
// clients, kills the server with SIGKILL while they flow, restarts it and
// checks that every acknowledged message is there.
func TestKill9LosesNothingAcknowledged(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir)
	const clients, perClient = 4, 400
	var mu sync.Mutex
	acked := map[string]int64{} // device -> highest acked tst
	var wg sync.WaitGroup
	start := time.Now().Add(-24 * time.Hour).Unix()
	for i := range clients {
		c := mustMQTT(t, "tcp://"+s.MQTT, fmt.Sprintf("kill-%d", i), "admin", adminPassword)
		device := fmt.Sprintf("dev%d", i)
		wg.Go(func() {
			for n := range perClient {
				tst := start + int64(n)
				tok := c.Publish("owntracks/admin/"+device, 1, true, location(50, 10, tst, "k"+device[3:]))
				if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
					return // the server died: stop at the first unacknowledged message
				}
				mu.Lock()
				acked[device] = max(acked[device], tst)
				mu.Unlock()
			}
		})
	}
	// Let some messages through, then crash mid-stream.
	eventually(t, "some acknowledgements", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(acked) == clients
	})
	s.kill()
	wg.Wait()

	s = startServer(t, dir)
	total := 0
	for device, highest := range acked {
		r := s.locations("admin", adminPassword, "admin", device)
		have := map[int64]bool{}
		for _, p := range r.Data {
			have[int64(p["tst"].(float64))] = true
		}
		// Each client publishes in order and waits for every ack, so
		// everything up to its highest acked tst was acknowledged.
		for tst := start; tst <= highest; tst++ {
			if !have[tst] {
				t.Fatalf("%s: acknowledged message tst=%d missing after kill -9 (have %d points)", device, tst, len(have))
			}
		}
		total += int(highest - start + 1)
	}
	t.Logf("%d acknowledged messages all present after kill -9", total)
}

func TestRetainedMessagesSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir)
	s.addUser("fay", "fay-pass-123")
	c := mustMQTT(t, "tcp://"+s.MQTT, "fay-phone", "fay", "fay-pass-123")
	publish(t, c, "owntracks/fay/phone", 1, true, location(7, 7, time.Now().Unix(), "fp"))
	c.Disconnect(100)
	s.stop()
	if !strings.Contains(s.err.String(), "msg=stopped") {
		t.Errorf("no clean stop logged after SIGTERM:\n%s", s.err.String())
	}

	s = startServer(t, dir)
	sub := mustMQTT(t, "tcp://"+s.MQTT, "fay-tablet", "fay", "fay-pass-123")
	got := make(chan string, 1)
	sub.Subscribe("owntracks/fay/+", 1, func(_ paho.Client, m paho.Message) {
		select {
		case got <- string(m.Payload()):
		default:
		}
	}).Wait()
	select {
	case p := <-got:
		if !strings.Contains(p, `"lat":7`) {
			t.Errorf("retained payload = %s", p)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("retained message not delivered after restart")
	}
}

func TestCLIWithAndWithoutServer(t *testing.T) {
	dir := t.TempDir()
	// No server: the CLI opens the store itself.
	runCLI(t, "gina-pass-12\n", "user", "add", "gina", "--password-stdin", "--data", dir)
	if out := runCLI(t, "", "user", "list", "--data", dir); !strings.Contains(out, "gina") {
		t.Errorf("user list = %q", out)
	}
	s := startServer(t, dir)
	// No admin is created when users exist already.
	if strings.Contains(s.out.String(), "Created user") {
		t.Error("admin bootstrapped on a store that has users")
	}
	c := mustMQTT(t, "tcp://"+s.MQTT, "gina-1", "gina", "gina-pass-12")
	c.Disconnect(50)

	// Server running: the CLI goes through the control socket and the
	// server sees the change at once.
	runCLI(t, "new-pass-123\n", "user", "passwd", "gina", "--password-stdin", "--data", dir)
	if _, err := mqttClient(t, "tcp://"+s.MQTT, "gina-2", "gina", "gina-pass-12"); err == nil {
		t.Error("old password still works after passwd")
	}
	mustMQTT(t, "tcp://"+s.MQTT, "gina-3", "gina", "new-pass-123")
	runCLI(t, "hank-pass-12\n", "user", "add", "hank", "--password-stdin", "--admin", "--data", dir)
	if code, _ := s.get("hank", "hank-pass-12", "/metrics"); code != 200 {
		t.Errorf("new admin hank: /metrics = %d", code)
	}
	runCLI(t, "", "user", "del", "hank", "--data", dir)
	if code, _ := s.get("hank", "hank-pass-12", "/api/0/last"); code != 401 {
		t.Errorf("deleted user: /api/0/last = %d, want 401", code)
	}
	// Errors are explained.
	for _, tc := range []struct {
		args  []string
		stdin string
		want  string
	}{
		{[]string{"user", "add", "gina", "--password-stdin"}, "whatever-123\n", "already exists"},
		{[]string{"user", "add", "Bad/Name", "--password-stdin"}, "whatever-123\n", "invalid user name"},
		{[]string{"user", "add", "ivan", "--password-stdin"}, "short\n", "at least 8"},
		{[]string{"user", "del", "nobody"}, "", "no user nobody"},
	} {
		cmd := exec.Command(binary, append(tc.args, "--data", dir)...)
		cmd.Stdin = strings.NewReader(tc.stdin)
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), tc.want) {
			t.Errorf("%v: err=%v output %q, want an error saying %q", tc.args, err, out, tc.want)
		}
	}
	// A second server on the same data directory is refused clearly.
	cmd := exec.Command(binary, "serve", "--data", dir, "--http", "127.0.0.1:0", "--mqtt", "127.0.0.1:0")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "already running") {
		t.Errorf("second server: err=%v %s", err, out)
	}
}

func TestFirstStartPrintsAdminPassword(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(binary, "serve", "--data", dir, "--http", "127.0.0.1:0", "--mqtt", "off")
	cmd.Env = os.Environ() // no WHEREHOUSE_ADMIN_PASSWORD
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	eventually(t, "ready", func() bool { return strings.Contains(out.String(), "msg=ready") })
	text := out.String()
	i := strings.Index(text, "with password:")
	if i < 0 {
		t.Fatalf("no password printed:\n%s", text)
	}
	password := strings.Fields(text[i+len("with password:"):])[0]
	addr := listenRE.FindAllStringSubmatch(text, -1)
	s := &testServer{t: t, HTTP: addr[len(addr)-1][2]}
	if code, body := s.get("admin", password, "/api/0/last"); code != 200 {
		t.Errorf("login with the printed password: %d %s", code, body)
	}
	if strings.Contains(text, "level=") && strings.Count(text, password) != 1 {
		t.Error("the admin password appears more than once (in the log?)")
	}
}

func TestMQTTOverTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, pool := selfSigned(t, dir)
	s := startServer(t, dir, "--mqtt-tls", "127.0.0.1:0", "--tls-cert", certFile, "--tls-key", keyFile)
	if s.MQTTS == "" {
		t.Fatal("no mqtts listener logged")
	}
	opts := paho.NewClientOptions().AddBroker("ssl://" + s.MQTTS).SetClientID("tls-1").
		SetUsername("admin").SetPassword(adminPassword).
		SetTLSConfig(&tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}).SetConnectTimeout(5 * time.Second)
	c := paho.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("tls connect: %v", tok.Error())
	}
	defer c.Disconnect(50)
	publish(t, c, "owntracks/admin/tls", 1, false, location(4, 4, time.Now().Unix(), "tl"))
	eventually(t, "tls location stored", func() bool { return s.locations("admin", adminPassword, "admin", "tls").Count == 1 })
}

// selfSigned writes a certificate for 127.0.0.1 and returns its files and
// a pool that trusts it.
func selfSigned(t *testing.T, dir string) (string, string, *x509.CertPool) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "wherehouse test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}
