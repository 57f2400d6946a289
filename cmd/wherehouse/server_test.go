package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// Integration tests run the real binary, built once in TestMain, on
// loopback ports, and talk to it with real clients.

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "wherehouse-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "wherehouse")
	args := []string{"build", "-race", "-o", binary}
	if webappBuilt() { // the browser tests need the web app inside
		args = append(args, "-tags", "webapp")
	}
	build := exec.Command("go", append(args, ".")...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build wherehouse:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const adminPassword = "admin-secret-1"

// webappBuilt reports whether the web app is built (frontend/dist), so
// TestMain embeds it for the browser tests.
func webappBuilt() bool {
	return fileExists(filepath.Join("..", "..", "frontend", "dist", "index.html"))
}

// lockedBuffer collects a process's output while tests read it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type testServer struct {
	t        *testing.T
	dir      string
	cmd      *exec.Cmd
	out, err *lockedBuffer
	HTTP     string // host:port
	MQTT     string // host:port, "" when off
	MQTTS    string
	done     chan struct{}
}

var listenRE = regexp.MustCompile(`msg=listening service=(\w+) addr=(\S+)`)

// startServer runs "wherehouse serve" on dir with loopback ports chosen by
// the kernel, and waits until it is ready.
func startServer(t *testing.T, dir string, args ...string) *testServer {
	t.Helper()
	base := []string{"serve", "--data", dir, "--http", "127.0.0.1:0", "--mqtt", "127.0.0.1:0"}
	cmd := exec.Command(binary, append(base, args...)...)
	cmd.Env = append(os.Environ(), "WHEREHOUSE_ADMIN_PASSWORD="+adminPassword)
	s := &testServer{t: t, dir: dir, cmd: cmd, out: &lockedBuffer{}, err: &lockedBuffer{}, done: make(chan struct{})}
	cmd.Stdout = s.out
	pr, pw := io.Pipe()
	cmd.Stderr = pw
	if err := cmd.Start(); err != nil {
		t.Fatalf("start server: %v", err)
	}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		signalled := false
		for sc.Scan() {
			line := sc.Text()
			s.err.Write([]byte(line + "\n"))
			if m := listenRE.FindStringSubmatch(line); m != nil {
				switch m[1] {
				case "http":
					s.HTTP = m[2]
				case "mqtt":
					s.MQTT = m[2]
				case "mqtts":
					s.MQTTS = m[2]
				}
			}
			if strings.Contains(line, "msg=ready") && !signalled {
				signalled = true
				close(ready)
			}
		}
	}()
	go func() {
		cmd.Wait()
		pw.Close()
		close(s.done)
	}()
	t.Cleanup(func() { s.stop() })
	select {
	case <-ready:
	case <-s.done:
		t.Fatalf("server exited before ready:\n%s", s.err.String())
	case <-time.After(20 * time.Second):
		t.Fatalf("server not ready after 20s:\n%s", s.err.String())
	}
	return s
}

// stop sends SIGTERM and waits for a clean exit.
func (s *testServer) stop() {
	select {
	case <-s.done:
		return
	default:
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(15 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
		s.t.Errorf("server did not stop within 15s of SIGTERM:\n%s", s.err.String())
	}
}

// kill stops the server like a crash: SIGKILL, no shutdown.
func (s *testServer) kill() {
	s.cmd.Process.Kill()
	<-s.done
}

func (s *testServer) url(path string) string { return "http://" + s.HTTP + path }

// get does an HTTP GET with basic auth (user "" for none) and returns
// status and body.
func (s *testServer) get(user, password, path string) (int, []byte) {
	s.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.url(path), nil)
	if user != "" {
		req.SetBasicAuth(user, password)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}

// send does an HTTP request with a JSON body (may be "") and basic auth.
func (s *testServer) send(method, user, password, path, body string) (int, []byte) {
	s.t.Helper()
	req, _ := http.NewRequest(method, s.url(path), strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if user != "" {
		req.SetBasicAuth(user, password)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// getJSON GETs path and decodes a 200 response into v.
func (s *testServer) getJSON(user, password, path string, v any) {
	s.t.Helper()
	code, body := s.get(user, password, path)
	if code != http.StatusOK {
		s.t.Fatalf("GET %s: status %d: %s", path, code, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		s.t.Fatalf("GET %s: %v in %s", path, err, body)
	}
}

// addUser creates a user through the CLI (over the control socket).
func (s *testServer) addUser(name, password string, extra ...string) {
	s.t.Helper()
	runCLI(s.t, password+"\n", append([]string{"user", "add", name, "--password-stdin", "--data", s.dir}, extra...)...)
}

// runCLI runs the real binary with stdin and fails the test on error.
func runCLI(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("wherehouse %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// mqttClient connects a paho client to addr ("tcp://..." or "ws://...").
func mqttClient(t *testing.T, broker, id, user, password string) (paho.Client, error) {
	t.Helper()
	opts := paho.NewClientOptions().AddBroker(broker).SetClientID(id).
		SetUsername(user).SetPassword(password).SetCleanSession(true).
		SetAutoReconnect(false).SetConnectTimeout(20 * time.Second)
	c := paho.NewClient(opts)
	tok := c.Connect()
	if !tok.WaitTimeout(30 * time.Second) {
		return nil, fmt.Errorf("connect to %s timed out", broker)
	}
	if err := tok.Error(); err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c, nil
}

func mustMQTT(t *testing.T, broker, id, user, password string) paho.Client {
	t.Helper()
	c, err := mqttClient(t, broker, id, user, password)
	if err != nil {
		t.Fatalf("mqtt connect %s as %s: %v", broker, user, err)
	}
	return c
}

// publish sends one message and waits for its acknowledgement.
func publish(t *testing.T, c paho.Client, topic string, qos byte, retain bool, payload string) {
	t.Helper()
	tok := c.Publish(topic, qos, retain, payload)
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publish %s: %v", topic, tok.Error())
	}
}

func location(lat, lon float64, tst int64, tid string) string {
	return fmt.Sprintf(`{"_type":"location","lat":%v,"lon":%v,"tst":%d,"tid":%q,"acc":12,"batt":80}`, lat, lon, tst, tid)
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// needTool skips (or, with WHEREHOUSE_TEST_STRICT=1, fails) when a program
// the test drives is not installed.
func needTool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if p := "/usr/sbin/" + name; fileExists(p) {
		return p
	}
	msg := fmt.Sprintf("%s not installed: apt-get install %s", name, pkg)
	if os.Getenv("WHEREHOUSE_TEST_STRICT") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

type locationsResponse struct {
	Count int              `json:"count"`
	Data  []map[string]any `json:"data"`
}

func (s *testServer) locations(user, password, owner, device string) locationsResponse {
	s.t.Helper()
	var r locationsResponse
	s.getJSON(user, password, "/api/0/locations?user="+owner+"&device="+device+"&from=2000-01-01&to=2100-01-01", &r)
	return r
}
