package recorder

import (
	"context"
	"errors"

	"github.com/wherehouse/wherehouse/crypto"
	"github.com/wherehouse/wherehouse/storage"
)

// SecretSource finds a device's payload-encryption secret.
type SecretSource interface {
	Secret(ctx context.Context, user, device string) (string, error)
}

// errNoSource means the recorder was built without a SecretSource.
var errNoSource = errors.New("no secrets configured")

// decrypt opens an {"_type":"encrypted"} envelope with the device's secret
// and parses the plaintext as the real message. A message that does not
// open is rejected, never stored as ciphertext.
func (r *Recorder) decrypt(in Incoming, env storage.Message) (storage.Message, error) {
	if r.opts.Secrets == nil {
		return env, reject(ReasonCrypto, "encrypted message for %s/%s: %v", env.User, env.Device, errNoSource)
	}
	secret, err := r.opts.Secrets.Secret(context.Background(), env.User, env.Device)
	if err != nil {
		return env, reject(ReasonCrypto, "encrypted message for %s/%s and no usable secret (set one with: wherehouse key set %s %s): %v",
			env.User, env.Device, env.User, env.Device, err)
	}
	plain, err := crypto.OpenEnvelope(in.Payload, secret)
	if err != nil {
		return env, reject(ReasonCrypto, "cannot decrypt message for %s/%s (does the app's secret match the one set here?): %v",
			env.User, env.Device, err)
	}
	m, err := Parse(in.Topic, plain, in.Received)
	if err != nil {
		return m, err
	}
	if m.Type == "encrypted" {
		return m, reject(ReasonCrypto, "encrypted message inside an encrypted message")
	}
	return m, nil
}
