package embedded

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"

	"github.com/wherehouse/wherehouse/storage"
)

// bbolt layout (history.db):
//
//	meta/schema                      -> uint64 schema version
//	hist/<user>/<device>/loc/<key>   -> location records
//	hist/<user>/<device>/msg/<key>   -> every other message type
//	hist/<user>/<device>/hid/<key>   -> hidden location records: kept, but
//	                                    outside loc, so no read of loc sees them
//	hist/<user>/<device>/pak/<key>   -> blocks of packed location records
//	                                    (block.go), keyed by their first
//	                                    record's key; loc keeps the newest
//	                                    and late ones loose (pack.go)
//
// <key> is tst (8 bytes, big endian) followed by an 8-byte FNV-1a hash of
// _type and payload, so a device's records sort by fix time, the same message
// received twice lands on the same key, and two different messages with the
// same tst both fit.
//
// Fence states, events and the webhook outbox live here too, not in
// state.db, so one transition commits (and is fsync'd) with its state and
// its deliveries:
//
//	fstate/<user>\x00<device>\x00<fence>   -> JSON storage.FenceState (default states are not stored; <fence> "" is the watermark)
//	events/<user>\x00<device>\x00<tst><id> -> JSON storage.Event
//	evid/<id>                              -> its events key, to find duplicates
//	outbox/<next><id>                      -> JSON storage.Delivery, pending
//	outid/<id>                             -> its outbox key
//	dlog/<webhook>\x00<finished><id>       -> JSON storage.Delivery, delivered or failed
//
// <tst> is UNIX seconds and <next> and <finished> are UNIX milliseconds,
// 8 bytes big endian, so events sort by device then fix time, the outbox by
// due time and each log by age. '\x00' cannot occur in a user or device
// name (they are MQTT topic levels, [MQTT-4.7.3-2]) and it sorts before
// every other byte, so "bob" and all its devices come before "bob.smith".
// Each webhook's log keeps its newest storage.DeliveryLogSize entries.
var (
	bucketMeta = []byte("meta")
	bucketHist = []byte("hist")
	bucketLoc  = []byte("loc")
	bucketMsg  = []byte("msg")
	bucketHid  = []byte("hid")
	bucketPak  = []byte("pak")
	keySchema  = []byte("schema")

	bucketFenceState = []byte("fstate")
	bucketEvents     = []byte("events")
	bucketEventID    = []byte("evid")
	bucketOutbox     = []byte("outbox")
	bucketOutboxID   = []byte("outid")
	bucketDeliveries = []byte("dlog")
)

// buntdb layout (state.db).
const (
	prefixUser    = "user:"    // user:<name> -> JSON storage.User
	prefixLast    = "last:"    // last:<user>/<device> -> JSON lastRecord
	prefixDevice  = "device:"  // device:<user>/<device> -> JSON storage.Device
	prefixKey     = "key:"     // key:<user>/<device> -> sealed secret (device "" = whole user)
	prefixShare   = "share:"   // share:<id> -> JSON storage.Share
	prefixGroup   = "group:"   // group:<name> -> JSON storage.Group
	prefixCmd     = "cmd:"     // cmd:<user>/<device>/<seq> -> cmd payload, with a TTL
	prefixFence   = "fence:"   // fence:<id> -> JSON storage.Fence
	prefixWebhook = "webhook:" // webhook:<id> -> JSON storage.Webhook
	prefixSession = "session:" // session:<sha256 hex> -> JSON storage.Session, with a TTL
)

// prefixPolicy keys retention policies in state.db: retention:<user> ->
// JSON storage.RetentionPolicy (none: keep everything).
const prefixPolicy = "retention:"

const (
	keyLen        = 16
	valueVersion  = 1
	schemaVersion = 2 // 2: packed blocks (pak) and the spatial index (geo, devid, devname)
)

func userKey(name string) string { return prefixUser + name }

func lastKey(user, device string) string { return prefixLast + user + "/" + device }

func recordKey(tst int64, h uint64) []byte {
	k := make([]byte, keyLen)
	binary.BigEndian.PutUint64(k, uint64(tst))
	binary.BigEndian.PutUint64(k[8:], h)
	return k
}

func tstKey(tst int64) []byte {
	k := make([]byte, 8)
	binary.BigEndian.PutUint64(k, uint64(tst))
	return k
}

func keyTST(k []byte) int64 { return int64(binary.BigEndian.Uint64(k)) }

// devicePrefix is the start of every fstate and events key of one device.
func devicePrefix(user, device string) []byte {
	k := make([]byte, 0, len(user)+len(device)+2)
	k = append(k, user...)
	k = append(k, 0)
	k = append(k, device...)
	return append(k, 0)
}

func fenceStateKey(user, device, fence string) []byte {
	return append(devicePrefix(user, device), fence...)
}

// fenceOfStateKey returns the fence ID of an fstate key: everything after
// the second '\x00' (fence IDs may hold any byte).
func fenceOfStateKey(k []byte) string {
	_, rest, _ := bytes.Cut(k, []byte{0})
	_, fence, _ := bytes.Cut(rest, []byte{0})
	return string(fence)
}

func eventKey(e *storage.Event) []byte {
	k := binary.BigEndian.AppendUint64(devicePrefix(e.User, e.Device), uint64(max(e.TST, 0)))
	return append(k, e.ID...)
}

// timeIDKey is <ms 8 bytes big endian><id>, after prefix: outbox and log keys.
func timeIDKey(prefix []byte, ms int64, id string) []byte {
	k := make([]byte, 0, len(prefix)+8+len(id))
	k = append(k, prefix...)
	k = binary.BigEndian.AppendUint64(k, uint64(max(ms, 0)))
	return append(k, id...)
}

func outboxKey(d *storage.Delivery) []byte { return timeIDKey(nil, d.Next, d.ID) }

// logPrefix is the start of every log key of one webhook.
func logPrefix(webhook string) []byte { return append([]byte(webhook), 0) }

func logKey(d *storage.Delivery) []byte { return timeIDKey(logPrefix(d.Webhook), d.Finished, d.ID) }

// messageHash is FNV-1a 64 (hash/fnv's New64a) of type, a 0 byte and the
// payload, computed inline: it runs for every message stored, and the
// hash.Hash allocated per call showed in imports.
func messageHash(m *storage.Message) uint64 {
	const offset, prime = 14695981039346656037, 1099511628211
	h := uint64(offset)
	for i := 0; i < len(m.Type); i++ {
		h = (h ^ uint64(m.Type[i])) * prime
	}
	h *= prime // the 0 separator: h ^ 0 == h
	for _, c := range m.Payload {
		h = (h ^ uint64(c)) * prime
	}
	return h
}

// encodeValue lays a record out as: version, lat, lon (float64 bits),
// uvarint received-ms, uvarint-prefixed topic and type, then the payload.
func encodeValue(m *storage.Message) []byte {
	return appendValue(make([]byte, 0, valueSize(m)), m)
}

// valueSize is at most the length of m's encoded value.
func valueSize(m *storage.Message) int {
	return 17 + 2*binary.MaxVarintLen64 + len(m.Topic) + len(m.Type) + len(m.Payload) + 4
}

// appendValue appends m's encoded value to b.
func appendValue(b []byte, m *storage.Message) []byte {
	b = append(b, valueVersion)
	b = binary.BigEndian.AppendUint64(b, math.Float64bits(m.Lat))
	b = binary.BigEndian.AppendUint64(b, math.Float64bits(m.Lon))
	b = binary.AppendUvarint(b, uint64(m.Received))
	b = binary.AppendUvarint(b, uint64(len(m.Topic)))
	b = append(b, m.Topic...)
	b = binary.AppendUvarint(b, uint64(len(m.Type)))
	b = append(b, m.Type...)
	return append(b, m.Payload...)
}

var errCorrupt = errors.New("corrupt record")

// decodeValue fills m from a stored value, copying every byte out of v
// (bbolt memory is only valid inside its transaction).
func decodeValue(v []byte, m *storage.Message) error {
	r := recordReader{arena: make([]byte, 0, len(v))} // one record: no shared block
	return r.decode(v, m)
}

// recordReader decodes the records of one scan, sharing what repeats: the
// topic and type strings of a device are allocated once, and payloads are
// copied into shared blocks instead of one allocation each.
type recordReader struct {
	topic, typ string
	arena      []byte
}

// arenaBlock is the size of the blocks payloads are copied into.
const arenaBlock = 64 << 10

func (r *recordReader) decode(v []byte, m *storage.Message) error {
	if len(v) < 17 || v[0] != valueVersion {
		return errCorrupt
	}
	m.Lat = math.Float64frombits(binary.BigEndian.Uint64(v[1:]))
	m.Lon = math.Float64frombits(binary.BigEndian.Uint64(v[9:]))
	v = v[17:]
	rcv, n := binary.Uvarint(v)
	if n <= 0 {
		return errCorrupt
	}
	m.Received = int64(rcv)
	v = v[n:]
	var b []byte
	var err error
	if b, v, err = readBytes(v); err != nil {
		return err
	}
	if string(b) != r.topic {
		r.topic = string(b)
	}
	m.Topic = r.topic
	if b, v, err = readBytes(v); err != nil {
		return err
	}
	if string(b) != r.typ {
		r.typ = string(b)
	}
	m.Type = r.typ
	m.Payload = r.hold(v)
	return nil
}

// hold copies p into the shared blocks and returns the copy, a full slice:
// appends by the caller cannot spill into the next payload.
func (r *recordReader) hold(p []byte) []byte {
	if cap(r.arena)-len(r.arena) < len(p) {
		r.arena = make([]byte, 0, max(arenaBlock, len(p)))
	}
	start := len(r.arena)
	r.arena = append(r.arena, p...)
	return r.arena[start:len(r.arena):len(r.arena)]
}

func readBytes(v []byte) ([]byte, []byte, error) {
	l, n := binary.Uvarint(v)
	if n <= 0 || uint64(len(v)-n) < l {
		return nil, nil, errCorrupt
	}
	return v[n : n+int(l)], v[n+int(l):], nil
}

// samePayload reports whether a stored value holds exactly m's type and
// payload. It compares in place, copying nothing: it runs for every
// duplicate (a redelivery, a message imported again).
func samePayload(v []byte, m *storage.Message) bool {
	if len(v) < 17 || v[0] != valueVersion {
		return false
	}
	_, n := binary.Uvarint(v[17:])
	if n <= 0 {
		return false
	}
	_, rest, err := readBytes(v[17+n:]) // topic
	if err != nil {
		return false
	}
	typ, payload, err := readBytes(rest)
	return err == nil && string(typ) == m.Type && bytes.Equal(payload, m.Payload)
}
