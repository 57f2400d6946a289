package embedded

import (
	"hash/fnv"
	"testing"

	"github.com/wherehouse/wherehouse/storage"
)

// TestMessageHashIsFNV pins the record key hash: stored keys depend on it,
// so it must stay FNV-1a 64 of type, 0, payload.
func TestMessageHashIsFNV(t *testing.T) {
	for _, m := range []storage.Message{
		{Type: "location", Payload: []byte(`{"_type":"location","lat":1,"lon":2,"tst":3}`)},
		{Type: "lwt", Payload: []byte(`{"_type":"lwt"}`)},
		{Type: "", Payload: nil},
		{Type: "ü", Payload: []byte{0, 0xff, 0x80}},
	} {
		h := fnv.New64a()
		h.Write([]byte(m.Type))
		h.Write([]byte{0})
		h.Write(m.Payload)
		if got, want := messageHash(&m), h.Sum64(); got != want {
			t.Errorf("messageHash(%q, %q) = %x, want %x", m.Type, m.Payload, got, want)
		}
	}
}
