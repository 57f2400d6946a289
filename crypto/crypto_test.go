package crypto

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
)

type vector struct {
	Name      string          `json:"name"`
	Secret    string          `json:"secret"`
	KeyHex    string          `json:"key_hex"`
	Plaintext string          `json:"plaintext"`
	Encrypted json.RawMessage `json:"encrypted"`
}

func loadVectors(tb testing.TB) []vector {
	tb.Helper()
	raw, err := os.ReadFile("../fixtures/encryption-vectors.json")
	if err != nil {
		tb.Fatal(err)
	}
	var vectors []vector
	if err := json.Unmarshal(raw, &vectors); err != nil {
		tb.Fatal(err)
	}
	if len(vectors) == 0 {
		tb.Fatal("no vectors")
	}
	return vectors
}

func decodeKey(t *testing.T, s string) [32]byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 32 {
		t.Fatalf("bad key_hex %q: %v", s, err)
	}
	return [32]byte(b)
}

func TestVectors(t *testing.T) {
	for _, v := range loadVectors(t) {
		t.Run(v.Name, func(t *testing.T) {
			key := decodeKey(t, v.KeyHex)

			want := KeyFromSecret(v.Secret)
			if strings.HasSuffix(v.Name, "-ios") {
				want = KeyFromSecretRuneSafe(v.Secret)
			}
			if key != want {
				t.Errorf("derived key = %x, want %x", want, key)
			}
			if !containsKey(Keys(v.Secret), key) {
				t.Errorf("Keys(%q) does not include %x", v.Secret, key)
			}

			if !IsEncrypted(v.Encrypted) {
				t.Errorf("IsEncrypted(%s) = false", v.Encrypted)
			}
			var env envelope
			if err := json.Unmarshal(v.Encrypted, &env); err != nil {
				t.Fatal(err)
			}
			got, err := Open(env.Data, key)
			if err != nil || string(got) != v.Plaintext {
				t.Errorf("Open with key_hex = %q, %v; want %q", got, err, v.Plaintext)
			}
			got, err = Open(env.Data, Keys(v.Secret)...)
			if err != nil || string(got) != v.Plaintext {
				t.Errorf("Open with Keys = %q, %v; want %q", got, err, v.Plaintext)
			}
			got, err = OpenEnvelope(v.Encrypted, v.Secret)
			if err != nil || string(got) != v.Plaintext {
				t.Errorf("OpenEnvelope = %q, %v; want %q", got, err, v.Plaintext)
			}

			data, err := Seal([]byte(v.Plaintext), key)
			if err != nil {
				t.Fatal(err)
			}
			got, err = Open(data, key)
			if err != nil || string(got) != v.Plaintext {
				t.Errorf("Seal/Open round trip = %q, %v; want %q", got, err, v.Plaintext)
			}

			wrong := key
			wrong[0] ^= 0xff
			if _, err := Open(env.Data, wrong); !errors.Is(err, ErrDecrypt) {
				t.Errorf("Open with wrong key: err = %v, want ErrDecrypt", err)
			}
			if _, err := OpenEnvelope(v.Encrypted, "!"+v.Secret); !errors.Is(err, ErrDecrypt) {
				t.Errorf("OpenEnvelope with wrong secret: err = %v, want ErrDecrypt", err)
			}
		})
	}
}

func containsKey(keys [][32]byte, key [32]byte) bool {
	for _, k := range keys {
		if k == key {
			return true
		}
	}
	return false
}

func TestKeyDerivation(t *testing.T) {
	// "ü" is two bytes starting at offset 31, so it straddles byte 32.
	const straddle = "abcdefghijklmnopqrstuvwxyz12345ü6"
	android, ios := KeyFromSecret(straddle), KeyFromSecretRuneSafe(straddle)
	if android[31] != 0xc3 {
		t.Errorf("KeyFromSecret byte 31 = %#x, want 0xc3", android[31])
	}
	if ios[31] != 0 {
		t.Errorf("KeyFromSecretRuneSafe byte 31 = %#x, want 0", ios[31])
	}
	if keys := Keys(straddle); len(keys) != 2 || keys[0] != android || keys[1] != ios {
		t.Errorf("Keys(straddle) = %x, want [android ios]", keys)
	}
	for _, secret := range []string{"", "s3cr3t", "grüße", strings.Repeat("é", 16), strings.Repeat("a", 40)} {
		if keys := Keys(secret); len(keys) != 1 {
			t.Errorf("Keys(%q) returned %d keys, want 1", secret, len(keys))
		}
	}
}

func TestIsEncrypted(t *testing.T) {
	tests := []struct {
		payload string
		want    bool
	}{
		{`{"_type":"encrypted","data":"AAAA"}`, true},
		{`{"_id":"abc","_type":"encrypted","data":"AAAA"}`, true},
		{` {"_type" : "encrypted"} `, true},
		{`{"_type":"location","lat":1,"lon":2}`, false},
		{`{"_type":"location","desc":"\"_type\":\"encrypted\""}`, false},
		{`{"_type":"encrypted"`, false},
		{`["_type","encrypted"]`, false},
		{`"encrypted"`, false},
		{`null`, false},
		{`{}`, false},
		{``, false},
	}
	for _, tt := range tests {
		if got := IsEncrypted([]byte(tt.payload)); got != tt.want {
			t.Errorf("IsEncrypted(%s) = %v, want %v", tt.payload, got, tt.want)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	key := KeyFromSecret("s3cr3t")
	data, err := Seal([]byte(`{"_type":"location"}`), key)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := base64.StdEncoding.DecodeString(data)
	if err != nil {
		t.Fatal(err)
	}
	raw[len(raw)-1] ^= 0x01
	tampered := base64.StdEncoding.EncodeToString(raw)

	tests := []struct {
		name string
		data string
		keys [][32]byte
		want error
	}{
		{"invalid base64", "not base64!", [][32]byte{key}, ErrMalformed},
		{"unpadded base64", "AAA", [][32]byte{key}, ErrMalformed},
		{"empty", "", [][32]byte{key}, ErrMalformed},
		{"shorter than nonce and mac", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", [][32]byte{key}, ErrMalformed},
		{"tampered", tampered, [][32]byte{key}, ErrDecrypt},
		{"wrong key", data, [][32]byte{KeyFromSecret("other")}, ErrDecrypt},
		{"no keys", data, nil, ErrDecrypt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Open(tt.data, tt.keys...); !errors.Is(err, tt.want) {
				t.Errorf("Open: err = %v, want %v", err, tt.want)
			}
		})
	}

	for _, payload := range []string{`not json`, `{"_type":"location"}`, `{"_type":"encrypted"}`, `{"_type":"encrypted","data":"%%"}`} {
		if _, err := OpenEnvelope([]byte(payload), "s3cr3t"); !errors.Is(err, ErrMalformed) {
			t.Errorf("OpenEnvelope(%s): err = %v, want ErrMalformed", payload, err)
		}
	}
}

func TestSealEnvelope(t *testing.T) {
	plaintext := []byte(`{"_type":"location","lat":52.52,"lon":13.405,"tst":1717225200}`)
	const secret = "abcdefghijklmnopqrstuvwxyz12345ü6"
	payload, err := SealEnvelope(plaintext, secret)
	if err != nil {
		t.Fatal(err)
	}
	var env map[string]string
	if err := json.Unmarshal(payload, &env); err != nil {
		t.Fatal(err)
	}
	if len(env) != 2 || env["_type"] != "encrypted" || env["data"] == "" {
		t.Errorf("SealEnvelope = %s, want _type and data only", payload)
	}
	if !IsEncrypted(payload) {
		t.Errorf("IsEncrypted(%s) = false", payload)
	}
	got, err := Open(env["data"], KeyFromSecret(secret))
	if err != nil || !bytes.Equal(got, plaintext) {
		t.Errorf("Open = %q, %v; want %q", got, err, plaintext)
	}
	got, err = OpenEnvelope(payload, secret)
	if err != nil || !bytes.Equal(got, plaintext) {
		t.Errorf("OpenEnvelope = %q, %v; want %q", got, err, plaintext)
	}

	// Nonces are random, so sealing twice must give different data.
	again, err := SealEnvelope(plaintext, secret)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(payload, again) {
		t.Error("SealEnvelope returned identical output twice")
	}
}

func FuzzOpenEnvelope(f *testing.F) {
	for _, v := range loadVectors(f) {
		f.Add([]byte(v.Encrypted), v.Secret)
	}
	f.Fuzz(func(t *testing.T, payload []byte, secret string) {
		plaintext, err := OpenEnvelope(payload, secret)
		if err != nil {
			if !errors.Is(err, ErrDecrypt) && !errors.Is(err, ErrMalformed) {
				t.Fatalf("OpenEnvelope: unexpected error %v", err)
			}
			return
		}
		if !IsEncrypted(payload) {
			t.Fatalf("OpenEnvelope accepted %q but IsEncrypted is false", payload)
		}
		data, err := Seal(plaintext, KeyFromSecret(secret))
		if err != nil {
			t.Fatal(err)
		}
		got, err := Open(data, Keys(secret)...)
		if err != nil || !bytes.Equal(got, plaintext) {
			t.Fatalf("round trip = %q, %v; want %q", got, err, plaintext)
		}
		sealed, err := SealEnvelope(plaintext, secret)
		if err != nil {
			t.Fatal(err)
		}
		got, err = OpenEnvelope(sealed, secret)
		if err != nil || !bytes.Equal(got, plaintext) {
			t.Fatalf("envelope round trip = %q, %v; want %q", got, err, plaintext)
		}
	})
}
