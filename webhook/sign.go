package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// Headers sent with every delivery.
const (
	// SignatureHeader carries Sign(secret, body); it is left out when the
	// webhook has no secret.
	SignatureHeader = "X-Wherehouse-Signature"
	// DeliveryHeader carries the delivery ID, the same on every retry, so
	// receivers can drop duplicates.
	DeliveryHeader = "X-Wherehouse-Delivery"
	// EventHeader carries the body's "event" field ("enter" or "leave").
	EventHeader = "X-Wherehouse-Event"
)

const signaturePrefix = "sha256="

// Sign returns the signature header value for body:
// "sha256=" + hex(HMAC-SHA256(secret, body)).
func Sign(secret string, body []byte) string {
	return signaturePrefix + hex.EncodeToString(mac(secret, body))
}

// Verify reports whether header is the signature of body under secret. The
// comparison is constant time, so receivers (and tests) can use it as is.
func Verify(secret string, body []byte, header string) bool {
	sig, ok := strings.CutPrefix(header, signaturePrefix)
	if !ok {
		return false
	}
	got, err := hex.DecodeString(sig)
	if err != nil {
		return false
	}
	return hmac.Equal(got, mac(secret, body))
}

func mac(secret string, body []byte) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return m.Sum(nil)
}
