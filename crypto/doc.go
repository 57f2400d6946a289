// Package crypto implements OwnTracks payload encryption.
//
// The OwnTracks apps can encrypt every JSON message with a shared secret
// using libsodium's secret-key authenticated encryption
// (crypto_secretbox_easy, XSalsa20-Poly1305). The encrypted message is
// carried in an envelope of the form
//
//	{"_type":"encrypted","data":"<base64>"}
//
// where data is the standard, padded base64 encoding of the 24-byte nonce
// followed by the secretbox output (16-byte MAC, then ciphertext).
//
// The key is the secret as UTF-8 bytes, zero-padded or truncated to 32
// bytes. Android truncates at byte 32, while iOS stops before a multi-byte
// character that would straddle that boundary, so a receiver may need to
// try both derivations; see [Keys].
//
// See https://owntracks.org/booklet/features/encrypt/ for the OwnTracks
// documentation of the scheme.
package crypto
