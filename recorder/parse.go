package recorder

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/wherehouse/wherehouse/storage"
)

// TopicPrefix is the first topic level the OwnTracks apps publish under.
const TopicPrefix = "owntracks"

// MaxPayload is the largest payload accepted (an iOS card with a face image
// is the biggest thing the apps send, well under this).
const MaxPayload = 256 << 10

// ErrInvalid wraps every reason a message is rejected; the text after it is
// the reason logged and counted.
var ErrInvalid = errors.New("invalid message")

// Reasons, used as the "reason" label of the rejected counter.
const (
	ReasonTopic    = "topic"
	ReasonJSON     = "json"
	ReasonType     = "type"
	ReasonField    = "field"
	ReasonSize     = "size"
	ReasonEmpty    = "empty"
	ReasonCrypto   = "encrypted"
	ReasonInternal = "internal"
)

// RejectError tells why a message was not stored.
type RejectError struct {
	Reason string // one of the Reason constants
	Detail string
}

func (e *RejectError) Error() string { return e.Reason + ": " + e.Detail }

// Unwrap makes every RejectError match ErrInvalid.
func (e *RejectError) Unwrap() error { return ErrInvalid }

func reject(reason, format string, args ...any) error {
	return &RejectError{Reason: reason, Detail: fmt.Sprintf(format, args...)}
}

// ParseTopic splits an OwnTracks topic into lower-cased user and device.
// The topic must be owntracks/<user>/<device>[/<subtopic>...].
func ParseTopic(topic string) (user, device string, err error) {
	if !utf8.ValidString(topic) {
		return "", "", reject(ReasonTopic, "topic is not valid UTF-8")
	}
	prefix, rest, ok1 := strings.Cut(topic, "/")
	user, rest, ok2 := strings.Cut(rest, "/")
	device, _, _ = strings.Cut(rest, "/")
	if !ok1 || !ok2 || prefix != TopicPrefix {
		return "", "", reject(ReasonTopic, "topic %q is not %s/<user>/<device>[/...]", topic, TopicPrefix)
	}
	user, device = strings.ToLower(user), strings.ToLower(device)
	if !validName(user) || !validName(device) {
		return "", "", reject(ReasonTopic, "topic %q has an empty or invalid user or device", topic)
	}
	return user, device, nil
}

// plainString returns the value of JSON string raw when it has no escapes
// (the common case, decoded without encoding/json), else "". raw is
// already known to be valid JSON.
func plainString(raw []byte) string {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return ""
	}
	inner := raw[1 : len(raw)-1]
	for _, c := range inner {
		if c == '\\' || c == '"' || c < 0x20 {
			return ""
		}
	}
	return string(inner)
}

func validName(s string) bool {
	if s == "" || len(s) > 128 || !utf8.ValidString(s) {
		return false
	}
	return !strings.ContainsAny(s, "+#\x00")
}

// Parse turns a received payload into a storage.Message, validating it
// strictly: valid UTF-8, exactly one JSON object with no trailing data, no
// duplicate keys, finite numbers, at most 64 levels of nesting, a string
// _type. A location also needs
// numeric lat/lon in range and a numeric tst. Other types are kept raw.
func Parse(topic string, payload []byte, received time.Time) (storage.Message, error) {
	user, device, err := ParseTopic(topic)
	if err != nil {
		return storage.Message{}, err
	}
	m := storage.Message{User: user, Device: device, Topic: topic, Received: received.UnixMilli()}
	if len(bytes.TrimSpace(payload)) == 0 {
		return m, reject(ReasonEmpty, "empty payload")
	}
	if len(payload) > MaxPayload {
		return m, reject(ReasonSize, "payload of %d bytes is over the %d byte limit", len(payload), MaxPayload)
	}
	var fields object
	if err := parseObject(payload, &fields); err != nil {
		return m, err
	}
	typ, ok := fields.get("_type")
	if !ok {
		return m, reject(ReasonType, "no _type")
	}
	if m.Type = plainString(typ); m.Type == "" {
		if err := json.Unmarshal(typ, &m.Type); err != nil || m.Type == "" {
			return m, reject(ReasonType, "_type is not a non-empty string")
		}
	}
	m.Payload = payload
	m.TST = received.Unix()
	if raw, ok := fields.get("tst"); ok {
		tst, err := parseTST(raw)
		if err != nil {
			return m, err
		}
		m.TST = tst
	} else if m.Type == "location" {
		return m, reject(ReasonField, "location without tst")
	}
	if m.Type == "location" {
		if err := parseLocation(&fields, &m); err != nil {
			return m, err
		}
	}
	return m, nil
}

// parseObject checks that payload is valid UTF-8 and a single JSON object,
// and fills fields with its top-level members, raw (see scanObject).
func parseObject(payload []byte, fields *object) error {
	if !utf8.Valid(payload) {
		return reject(ReasonJSON, "payload is not valid UTF-8")
	}
	return scanObject(payload, fields)
}

// maxTST is year 5138; anything later is a unit mistake (milliseconds).
const maxTST = 1 << 37

func parseTST(raw json.RawMessage) (int64, error) {
	f, err := number(raw)
	if err != nil {
		return 0, reject(ReasonField, "tst: %v", err)
	}
	if f < 0 || f > maxTST || f != math.Trunc(f) {
		return 0, reject(ReasonField, "tst %v is not a UNIX time in whole seconds", f)
	}
	return int64(f), nil
}

// numericFields must be numbers when present (PROTOCOL.md, location fields).
var numericFields = []string{"acc", "alt", "vac", "vel", "cog", "batt", "bs", "p", "created_at", "dist"}

func parseLocation(fields *object, m *storage.Message) error {
	var err error
	if m.Lat, err = coordinate(fields, "lat", 90); err != nil {
		return err
	}
	if m.Lon, err = coordinate(fields, "lon", 180); err != nil {
		return err
	}
	for _, name := range numericFields {
		if raw, ok := fields.get(name); ok {
			f, err := number(raw)
			if err != nil {
				return reject(ReasonField, "%s: %v", name, err)
			}
			if name == "acc" {
				m.Acc = f
			}
		}
	}
	if raw, ok := fields.get("tid"); ok {
		// The scanner has checked the value is valid JSON: a string is
		// one that starts with a quote.
		if len(raw) == 0 || raw[0] != '"' {
			return reject(ReasonField, "tid is not a string")
		}
	}
	return nil
}

func coordinate(fields *object, name string, limit float64) (float64, error) {
	raw, ok := fields.get(name)
	if !ok {
		return 0, reject(ReasonField, "location without %s", name)
	}
	f, err := number(raw)
	if err != nil {
		return 0, reject(ReasonField, "%s: %v", name, err)
	}
	if f < -limit || f > limit {
		return 0, reject(ReasonField, "%s %v out of range ±%v", name, f, limit)
	}
	return f, nil
}

// number parses a raw JSON value that must be a finite number.
func number(raw json.RawMessage) (float64, error) {
	if len(raw) == 0 || !(raw[0] == '-' || (raw[0] >= '0' && raw[0] <= '9')) {
		return 0, errors.New("not a number")
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, errors.New("not a finite number")
	}
	return f, nil
}
