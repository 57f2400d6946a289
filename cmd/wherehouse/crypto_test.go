package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

type vector struct {
	Name      string          `json:"name"`
	Secret    string          `json:"secret"`
	Plaintext string          `json:"plaintext"`
	Encrypted json.RawMessage `json:"encrypted"`
}

func loadVectors(t *testing.T) []vector {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "fixtures", "encryption-vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	var v []vector
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestEncryptedPayloads sends every libsodium vector through mosquitto_pub
// with the device's secret set by "wherehouse key set" on the running
// server, and checks that exactly the plaintext is stored.
func TestEncryptedPayloads(t *testing.T) {
	pub := needTool(t, "mosquitto_pub", "mosquitto-clients")
	dir := t.TempDir()
	s := startServer(t, dir)
	host, port, _ := strings.Cut(s.MQTT, ":")
	send := func(device string, payload []byte) {
		t.Helper()
		out, err := exec.Command(pub, "-h", host, "-p", port, "-u", "admin", "-P", adminPassword, "-q", "1",
			"-i", "enc-"+device, "-t", "owntracks/admin/"+device, "-m", string(payload)).CombinedOutput()
		if err != nil {
			t.Fatalf("mosquitto_pub: %v %s", err, out)
		}
	}
	stored := map[string]int{}
	rejected := 0
	for _, v := range loadVectors(t) {
		runCLI(t, v.Secret+"\n", "key", "set", "admin", v.Name, "--data", dir)
		send(v.Name, v.Encrypted)
		var pt struct {
			Type string  `json:"_type"`
			Lat  float64 `json:"lat"`
			TST  int64   `json:"tst"`
		}
		json.Unmarshal([]byte(v.Plaintext), &pt)
		switch pt.Type {
		case "":
			rejected++ // a plaintext without _type is rejected like any other
		case "location":
			stored["location"]++
			eventually(t, v.Name+" stored", func() bool {
				return s.locations("admin", adminPassword, "admin", v.Name).Count == 1
			})
			r := s.locations("admin", adminPassword, "admin", v.Name)
			if r.Data[0]["lat"] != pt.Lat || int64(r.Data[0]["tst"].(float64)) != pt.TST {
				t.Errorf("%s: stored %v, want the plaintext %s", v.Name, r.Data[0], v.Plaintext)
			}
			if _, ok := r.Data[0]["data"]; ok {
				t.Errorf("%s: ciphertext stored", v.Name)
			}
		default:
			stored[pt.Type]++
		}
	}
	eventually(t, "every vector counted", func() bool {
		_, body := s.get("admin", adminPassword, "/metrics")
		for typ, n := range stored {
			if !strings.Contains(string(body), fmt.Sprintf("wherehouse_messages_stored_total{type=%q} %d", typ, n)) {
				return false
			}
		}
		return strings.Contains(string(body), fmt.Sprintf(`wherehouse_messages_rejected_total{reason="type"} %d`, rejected))
	})

	// A wrong secret, and no secret at all, are rejected and counted;
	// nothing is stored for those devices.
	v := loadVectors(t)[0]
	runCLI(t, "not-the-secret\n", "key", "set", "admin", "wrongkey", "--data", dir)
	send("wrongkey", v.Encrypted)
	send("nokey", v.Encrypted)
	eventually(t, "two crypto rejections", func() bool {
		_, body := s.get("admin", adminPassword, "/metrics")
		return strings.Contains(string(body), `wherehouse_messages_rejected_total{reason="encrypted"} 2`)
	})
	for _, d := range []string{"wrongkey", "nokey"} {
		if n := s.locations("admin", adminPassword, "admin", d).Count; n != 0 {
			t.Errorf("%s: %d points stored from an undecryptable message", d, n)
		}
	}
	if !strings.Contains(s.err.String(), "wherehouse key set admin nokey") {
		t.Error("the log does not say how to set the missing secret")
	}
	// One secret for all of a user's devices.
	runCLI(t, v.Secret+"\n", "key", "set", "admin", "*", "--data", dir)
	send("anydevice", v.Encrypted)
	eventually(t, "user-wide secret used", func() bool {
		return s.locations("admin", adminPassword, "admin", "anydevice").Count == 1
	})
	// Secrets are not stored in plain text.
	for _, f := range []string{"state.db", "history.db"} {
		b, _ := os.ReadFile(filepath.Join(dir, f))
		if strings.Contains(string(b), v.Secret) {
			t.Errorf("%s contains a device secret in plain text", f)
		}
	}
	if fi, err := os.Stat(filepath.Join(dir, "server.key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("server.key: %v %v, want mode 0600", fi.Mode(), err)
	}
	runCLI(t, "", "key", "del", "admin", "*", "--data", dir)

	// The same through the API: owners and admins only.
	s.addUser("lena", "lena-pass-12")
	body, _ := json.Marshal(map[string]string{"secret": v.Secret})
	if code, b := s.send(http.MethodPut, "lena", "lena-pass-12", "/api/v1/keys/admin/apikey", string(body)); code != http.StatusForbidden {
		t.Errorf("lena setting admin's key: %d %s, want 403", code, b)
	}
	if code, b := s.send(http.MethodPut, "admin", adminPassword, "/api/v1/keys/admin/apikey", string(body)); code != http.StatusNoContent {
		t.Fatalf("PUT key: %d %s", code, b)
	}
	send("apikey", v.Encrypted)
	eventually(t, "secret set by API used", func() bool {
		return s.locations("admin", adminPassword, "admin", "apikey").Count == 1
	})
	if code, _ := s.send(http.MethodDelete, "admin", adminPassword, "/api/v1/keys/admin/apikey", ""); code != http.StatusNoContent {
		t.Errorf("DELETE key: %d", code)
	}
	if code, _ := s.send(http.MethodDelete, "admin", adminPassword, "/api/v1/keys/admin/apikey", ""); code != http.StatusNotFound {
		t.Errorf("DELETE missing key: %d, want 404", code)
	}
	if code, _ := s.get("admin", adminPassword, "/healthz"); code != http.StatusOK {
		t.Error("server unhealthy")
	}
}
