package storetest

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/wherehouse/wherehouse/storage"
)

// Run runs the contract suite against the backend that open creates. open
// must return a new, empty store for every call; Run closes it with
// t.Cleanup when the subtest that opened it ends.
func Run(t *testing.T, open func(t *testing.T) storage.Store) {
	t.Helper()
	newStore := func(t *testing.T) storage.Store {
		t.Helper()
		s := open(t)
		t.Cleanup(func() {
			if err := s.Close(); err != nil {
				t.Errorf("close store: %v", err)
			}
		})
		return s
	}
	for _, tc := range []struct {
		name string
		run  func(t *testing.T, open func(*testing.T) storage.Store)
	}{
		{"AppendLocationsRoundTrip", testRoundTrip},
		{"LocationsOnlyLocations", testOnlyLocations},
		{"LocationsOrderByTST", testOrder},
		{"LocationsSeparateDevices", testSeparateDevices},
		{"LocationsRange", testRange},
		{"LocationsLimit", testLimit},
		{"AppendDuplicates", testDuplicates},
		{"LocationsCallbackError", testCallbackError},
		{"LocationsLargeRange", testLargeRange},
		{"AppendCopiesInput", testAppendCopiesInput},
		{"WriteDuringWalk", testWriteDuringWalk},
		{"AllMessages", testAllMessages},
		{"LastLocations", testLastLocations},
		{"LastLocationsFilter", testLastFilter},
		{"LastLocationsEmpty", testLastEmpty},
		{"OddNames", testOddNames},
		{"LastLocationsIgnoreOtherTypes", testLastOtherTypes},
		{"DataUsersAndDevices", testDataUsersDevices},
		{"Users", testUsers},
		{"UsersErrors", testUserErrors},
		{"DeleteUserKeepsHistory", testDeleteUserKeepsHistory},
		{"CancelledContext", testCancelledContext},
		{"Fences", testFences},
		{"DeleteFenceStates", testDeleteFenceStates},
		{"RecordTransitions", testRecordTransitions},
		{"Events", testEvents},
		{"Outbox", testOutbox},
		{"DeliveryLog", testDeliveryLog},
		{"Webhooks", testWebhooks},
		{"FencesCancelledContext", testFencesCancelledContext},
		{"Sessions", testSessions},
		{"SessionsExpire", testSessionsExpire},
		{"DeleteRange", testDeleteRange},
		{"DeleteRangeLast", testDeleteRangeLast},
		{"DeleteRangeLarge", testDeleteRangeLarge},
		{"DeleteLocations", testDeleteLocations},
		{"HideLocations", testHideLocations},
		{"DeleteDevice", testDeleteDevice},
		{"DeleteUserData", testDeleteUserData},
		{"ThinLocations", testThinLocations},
		{"RetentionPolicies", testRetentionPolicies},
		{"RetentionCancelledContext", testRetentionCancelledContext},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.run(t, newStore)
		})
	}
}

// base is a realistic fix time (November 2023) so backends see real-sized
// values, not small integers.
const base int64 = 1_700_000_000

// location builds a location fix whose coordinates and payload are derived
// from tst, so two fixes of one device differ in every field.
func location(user, device string, tst int64) storage.Message {
	lat := 52.5 + float64(tst%1000)/1e4
	lon := 13.4 - float64(tst%997)/1e4
	return storage.Message{
		User:     user,
		Device:   device,
		Topic:    "owntracks/" + user + "/" + device,
		Type:     "location",
		TST:      tst,
		Received: tst*1000 + 250,
		Lat:      lat,
		Lon:      lon,
		Payload:  fmt.Appendf(nil, `{"_type":"location","lat":%v,"lon":%v,"tst":%d,"tid":%q}`, lat, lon, tst, device),
	}
}

// event builds a message of another _type (lwt, card, transition, ...).
func event(user, device, typ string, tst int64) storage.Message {
	return storage.Message{
		User:     user,
		Device:   device,
		Topic:    "owntracks/" + user + "/" + device,
		Type:     typ,
		TST:      tst,
		Received: tst*1000 + 750,
		Payload:  fmt.Appendf(nil, `{"_type":%q,"tst":%d}`, typ, tst),
	}
}

// locations builds one location of user/device per tst.
func locations(user, device string, tsts ...int64) []storage.Message {
	out := make([]storage.Message, len(tsts))
	for i, tst := range tsts {
		out[i] = location(user, device, tst)
	}
	return out
}

// mustAppend appends msgs and fails unless none of them was a duplicate.
func mustAppend(t *testing.T, s storage.Store, msgs ...storage.Message) {
	t.Helper()
	dup, err := s.Append(t.Context(), msgs)
	if err != nil {
		t.Fatalf("Append(%d messages): %v", len(msgs), err)
	}
	if len(dup) != len(msgs) {
		t.Fatalf("Append(%d messages) returned %d dup flags", len(msgs), len(dup))
	}
	if i := slices.Index(dup, true); i >= 0 {
		t.Fatalf("Append: message %d (tst %d) reported as duplicate", i, msgs[i].TST)
	}
}

// collect returns everything Locations hands to fn for q.
func collect(t *testing.T, s storage.Store, q storage.LocationQuery) []storage.Message {
	t.Helper()
	var out []storage.Message
	err := s.Locations(t.Context(), q, func(m *storage.Message) error {
		out = append(out, *m)
		return nil
	})
	if err != nil {
		t.Fatalf("Locations(%+v): %v", q, err)
	}
	return out
}

// all selects every location of user/device.
func allOf(user, device string) storage.LocationQuery {
	return storage.LocationQuery{User: user, Device: device, From: 0, To: base * 2}
}

func tsts(msgs []storage.Message) []int64 {
	out := make([]int64, len(msgs))
	for i := range msgs {
		out[i] = msgs[i].TST
	}
	return out
}

// checkMessage reports every field of got that differs from want. Floats
// and payload bytes are compared exactly: storage must be lossless.
func checkMessage(t *testing.T, what string, got, want storage.Message) {
	t.Helper()
	if got.User != want.User || got.Device != want.Device {
		t.Errorf("%s: user/device = %q/%q, want %q/%q", what, got.User, got.Device, want.User, want.Device)
	}
	if got.Topic != want.Topic {
		t.Errorf("%s: topic = %q, want %q", what, got.Topic, want.Topic)
	}
	if got.Type != want.Type {
		t.Errorf("%s: type = %q, want %q", what, got.Type, want.Type)
	}
	if got.TST != want.TST {
		t.Errorf("%s: tst = %d, want %d", what, got.TST, want.TST)
	}
	if got.Received != want.Received {
		t.Errorf("%s: received = %d, want %d", what, got.Received, want.Received)
	}
	if got.Lat != want.Lat || got.Lon != want.Lon {
		t.Errorf("%s: lat/lon = %v/%v, want %v/%v", what, got.Lat, got.Lon, want.Lat, want.Lon)
	}
	if !bytes.Equal(got.Payload, want.Payload) {
		t.Errorf("%s: payload = %q, want %q", what, got.Payload, want.Payload)
	}
}

func checkMessages(t *testing.T, what string, got, want []storage.Message) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: got %d messages (tst %v), want %d (tst %v)", what, len(got), tsts(got), len(want), tsts(want))
	}
	for i := range got {
		checkMessage(t, fmt.Sprintf("%s[%d]", what, i), got[i], want[i])
	}
}

// cancelled returns a context that is already cancelled.
func cancelled(t *testing.T) context.Context {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	return ctx
}

// sortMessages orders msgs by user, device, tst and payload, for comparing
// sets in which several messages share one tst.
func sortMessages(msgs []storage.Message) []storage.Message {
	slices.SortFunc(msgs, func(a, b storage.Message) int {
		return cmp.Or(
			cmp.Compare(a.User, b.User),
			cmp.Compare(a.Device, b.Device),
			cmp.Compare(a.TST, b.TST),
			bytes.Compare(a.Payload, b.Payload),
		)
	})
	return msgs
}
