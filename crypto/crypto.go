package crypto

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"

	"golang.org/x/crypto/nacl/secretbox"
)

// KeySize is the length of an encryption key in bytes.
const KeySize = 32

const (
	nonceSize  = 24
	typeSealed = "encrypted"
)

var (
	// ErrDecrypt is returned when a payload fails authentication, which
	// usually means that the key is wrong or the data was altered.
	ErrDecrypt = errors.New("crypto: wrong key or corrupted payload")

	// ErrMalformed is returned when a payload is not an encrypted envelope,
	// is not valid base64, or is too short to hold a nonce and a MAC.
	ErrMalformed = errors.New("crypto: malformed encrypted payload")
)

// envelope is the JSON wrapper around an encrypted payload. Other fields,
// such as the _id some Android builds add, are ignored.
type envelope struct {
	Type string `json:"_type"`
	Data string `json:"data"`
}

// KeyFromSecret derives a key the way the Android app does: the UTF-8 bytes
// of secret are copied into a zero-filled 32-byte buffer and anything past
// 32 bytes is dropped.
func KeyFromSecret(secret string) [KeySize]byte {
	var key [KeySize]byte
	copy(key[:], secret)
	return key
}

// KeyFromSecretRuneSafe derives a key the way the iOS app does: like
// KeyFromSecret, but a multi-byte UTF-8 character that would not fit
// entirely within 32 bytes is left out.
func KeyFromSecretRuneSafe(secret string) [KeySize]byte {
	n := 0
	for n < len(secret) {
		_, size := utf8.DecodeRuneInString(secret[n:])
		if n+size > KeySize {
			break
		}
		n += size
	}
	return KeyFromSecret(secret[:n])
}

// Keys returns the distinct keys that secret may have been turned into by
// the OwnTracks apps, in the order they should be tried. It returns a single
// key unless the secret has a multi-byte character straddling byte 32.
func Keys(secret string) [][KeySize]byte {
	android, ios := KeyFromSecret(secret), KeyFromSecretRuneSafe(secret)
	if android == ios {
		return [][KeySize]byte{android}
	}
	return [][KeySize]byte{android, ios}
}

// IsEncrypted reports whether payload is a JSON object whose _type is
// "encrypted".
func IsEncrypted(payload []byte) bool {
	var env envelope
	return json.Unmarshal(payload, &env) == nil && env.Type == typeSealed
}

// Open decodes the base64 data of an encrypted envelope and decrypts it with
// the first of keys that authenticates it. It returns ErrMalformed if data
// cannot hold a sealed message and ErrDecrypt if no key works.
func Open(data string, keys ...[KeySize]byte) ([]byte, error) {
	raw, err := base64.StdEncoding.DecodeString(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if len(raw) < nonceSize+secretbox.Overhead {
		return nil, fmt.Errorf("%w: %d bytes is too short", ErrMalformed, len(raw))
	}
	var nonce [nonceSize]byte
	copy(nonce[:], raw)
	box := raw[nonceSize:]
	for i := range keys {
		if plaintext, ok := secretbox.Open(nil, box, &nonce, &keys[i]); ok {
			if plaintext == nil {
				plaintext = []byte{}
			}
			return plaintext, nil
		}
	}
	return nil, ErrDecrypt
}

// OpenEnvelope parses an encrypted OwnTracks envelope and decrypts it with
// the keys derived from secret by Keys.
func OpenEnvelope(payload []byte, secret string) ([]byte, error) {
	var env envelope
	if err := json.Unmarshal(payload, &env); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if env.Type != typeSealed {
		return nil, fmt.Errorf("%w: _type is %q, not %q", ErrMalformed, env.Type, typeSealed)
	}
	return Open(env.Data, Keys(secret)...)
}

// Seal encrypts plaintext with key under a random nonce and returns the
// base64 data for an encrypted envelope.
func Seal(plaintext []byte, key [KeySize]byte) (string, error) {
	var nonce [nonceSize]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return "", fmt.Errorf("crypto: read nonce: %w", err)
	}
	out := make([]byte, nonceSize, nonceSize+secretbox.Overhead+len(plaintext))
	copy(out, nonce[:])
	out = secretbox.Seal(out, plaintext, &nonce, &key)
	return base64.StdEncoding.EncodeToString(out), nil
}

// SealEnvelope encrypts plaintext with the key KeyFromSecret derives from
// secret and returns the complete JSON envelope.
func SealEnvelope(plaintext []byte, secret string) ([]byte, error) {
	data, err := Seal(plaintext, KeyFromSecret(secret))
	if err != nil {
		return nil, err
	}
	payload, err := json.Marshal(envelope{Type: typeSealed, Data: data})
	if err != nil {
		return nil, fmt.Errorf("crypto: encode envelope: %w", err)
	}
	return payload, nil
}
