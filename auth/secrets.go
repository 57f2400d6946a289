package auth

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"

	"golang.org/x/crypto/nacl/secretbox"

	"github.com/wherehouse/wherehouse/storage"
)

// ErrNoSecret means no payload-encryption secret is set for a device.
var ErrNoSecret = errors.New("no encryption secret set")

// AllDevices is the device name of a secret that applies to every device
// of a user that has none of its own.
const AllDevices = "*"

// Keyring seals device secrets at rest with a server key kept in its own
// file (mode 0600), so a copy of the store alone does not reveal them.
type Keyring struct {
	key [32]byte
}

// LoadKeyring reads the server key from path, creating it on first use.
func LoadKeyring(path string) (*Keyring, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		var k Keyring
		rand.Read(k.key[:])
		if err := os.WriteFile(path, []byte(hex.EncodeToString(k.key[:])+"\n"), 0o600); err != nil {
			return nil, fmt.Errorf("create server key %s: %w", path, err)
		}
		return &k, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read server key %s: %w", path, err)
	}
	raw, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(raw) != 32 {
		return nil, fmt.Errorf("server key %s is not 64 hex digits; restore it from a backup (without it stored device secrets cannot be read)", path)
	}
	var k Keyring
	copy(k.key[:], raw)
	return &k, nil
}

// Seal encrypts a secret for storage.
func (k *Keyring) Seal(secret string) []byte {
	var nonce [24]byte
	rand.Read(nonce[:])
	return secretbox.Seal(nonce[:], []byte(secret), &nonce, &k.key)
}

// Open decrypts a sealed secret.
func (k *Keyring) Open(sealed []byte) (string, error) {
	if len(sealed) < 24+secretbox.Overhead {
		return "", errors.New("sealed secret too short")
	}
	var nonce [24]byte
	copy(nonce[:], sealed)
	out, ok := secretbox.Open(nil, sealed[24:], &nonce, &k.key)
	if !ok {
		return "", errors.New("sealed secret does not open with this server key")
	}
	return string(out), nil
}

// Secrets manages the payload-encryption secret of each device.
type Secrets struct {
	store storage.Keys
	ring  *Keyring

	mu    sync.Mutex
	cache map[string]string // user/device -> secret ("" cached as absent)
}

// NewSecrets returns secrets kept in store, sealed with ring.
func NewSecrets(store storage.Keys, ring *Keyring) *Secrets {
	return &Secrets{store: store, ring: ring, cache: map[string]string{}}
}

func keyDevice(device string) string {
	if device == AllDevices {
		return ""
	}
	return device
}

// Set stores the secret of user's device (AllDevices for all of them).
func (s *Secrets) Set(ctx context.Context, user, device, secret string) error {
	if secret == "" {
		return errors.New("empty secret")
	}
	if err := s.store.SetKey(ctx, user, keyDevice(device), s.ring.Seal(secret)); err != nil {
		return err
	}
	s.forget()
	return nil
}

// Delete removes a secret.
func (s *Secrets) Delete(ctx context.Context, user, device string) error {
	if err := s.store.DeleteKey(ctx, user, keyDevice(device)); err != nil {
		return err
	}
	s.forget()
	return nil
}

// Secret returns the secret for a device: its own, else the user's
// all-devices secret; ErrNoSecret if neither is set.
func (s *Secrets) Secret(ctx context.Context, user, device string) (string, error) {
	id := user + "/" + device
	s.mu.Lock()
	v, ok := s.cache[id]
	s.mu.Unlock()
	if ok {
		if v == "" {
			return "", ErrNoSecret
		}
		return v, nil
	}
	secret, err := s.lookup(ctx, user, device)
	if err != nil && !errors.Is(err, ErrNoSecret) {
		return "", err
	}
	s.mu.Lock()
	s.cache[id] = secret
	s.mu.Unlock()
	if secret == "" {
		return "", ErrNoSecret
	}
	return secret, nil
}

func (s *Secrets) lookup(ctx context.Context, user, device string) (string, error) {
	for _, d := range []string{device, ""} {
		sealed, err := s.store.Key(ctx, user, d)
		if errors.Is(err, storage.ErrNotFound) {
			continue
		}
		if err != nil {
			return "", err
		}
		return s.ring.Open(sealed)
	}
	return "", ErrNoSecret
}

func (s *Secrets) forget() {
	s.mu.Lock()
	clear(s.cache)
	s.mu.Unlock()
}
