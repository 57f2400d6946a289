package recorder

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/wherehouse/wherehouse/crypto"
)

type staticSecret string

func (s staticSecret) Secret(context.Context, string, string) (string, error) { return string(s), nil }

// FuzzDecryptParse feeds arbitrary envelopes through decryption and the
// parser: never a panic, never ciphertext or an inner envelope accepted.
func FuzzDecryptParse(f *testing.F) {
	var vectors []struct {
		Secret    string          `json:"secret"`
		Encrypted json.RawMessage `json:"encrypted"`
	}
	b, err := os.ReadFile("../fixtures/encryption-vectors.json")
	if err != nil {
		f.Fatal(err)
	}
	json.Unmarshal(b, &vectors)
	for _, v := range vectors {
		if v.Secret == "s3cr3t" {
			f.Add([]byte(v.Encrypted))
		}
	}
	inner, _ := crypto.SealEnvelope([]byte(`{"_type":"encrypted","data":"AAAA"}`), "s3cr3t")
	f.Add(inner)
	f.Add([]byte(`{"_type":"encrypted","data":"not base64"}`))
	f.Add([]byte(`{"_type":"encrypted"}`))

	r := New(nil, nil, NewMetrics(nil), slog.New(slog.DiscardHandler), Options{Secrets: staticSecret("s3cr3t")})
	const topic = "owntracks/alice/phone"
	f.Fuzz(func(t *testing.T, payload []byte) {
		in := Incoming{Topic: topic, Payload: payload, Received: time.Unix(1700000000, 0)}
		env, err := Parse(topic, payload, in.Received)
		if err != nil || env.Type != "encrypted" {
			return
		}
		m, err := r.decrypt(in, env)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		if m.Type == "encrypted" || m.Type == "" || !json.Valid(m.Payload) {
			t.Fatalf("accepted %q as %q", m.Payload, m.Type)
		}
		plain, err := crypto.OpenEnvelope(payload, "s3cr3t")
		if err != nil || string(plain) != string(m.Payload) {
			t.Fatalf("stored payload is not the plaintext: %q vs %q (%v)", m.Payload, plain, err)
		}
	})
}
