package storetest

import (
	"slices"
	"testing"

	"github.com/wherehouse/wherehouse/storage"
)

// lastLocations calls LastLocations and fails the test on error.
func lastLocations(t *testing.T, s storage.Store, user, device string) []storage.Message {
	t.Helper()
	got, err := s.LastLocations(t.Context(), user, device)
	if err != nil {
		t.Fatalf("LastLocations(%q, %q): %v", user, device, err)
	}
	return got
}

func testLastLocations(t *testing.T, open func(*testing.T) storage.Store) {
	s := open(t)
	// Last positions must be as lossless as history.
	exotic := location("bob", "watch", base+5)
	exotic.Payload = []byte("{ \"_type\": \"location\", \"lat\": 52.5, \"desc\": \"<home> & \\\"caf\\u00e9\\\" ü\" }\n")

	mustAppend(t, s, locations("alice", "phone", base+100, base+300, base+200)...)
	mustAppend(t, s, locations("alice", "tablet", base+50)...)
	mustAppend(t, s, locations("bob", "phone", base+10)...)
	mustAppend(t, s, locations("bob", "phone", base+20)...)
	mustAppend(t, s, exotic)
	// Late arrivals: an older fix must not replace a newer one...
	mustAppend(t, s, locations("alice", "phone", base+250)...)
	mustAppend(t, s, locations("bob", "phone", base+15, base+1)...)
	// ...but a newer one, even in the same batch as older ones, must.
	mustAppend(t, s, locations("alice", "tablet", base+40, base+60, base+45)...)

	want := []storage.Message{
		location("alice", "phone", base+300),
		location("alice", "tablet", base+60),
		location("bob", "phone", base+20),
		exotic,
	}
	checkMessages(t, "LastLocations", lastLocations(t, s, "", ""), want)
}

func testLastFilter(t *testing.T, open func(*testing.T) storage.Store) {
	s := open(t)
	alicePhone := location("alice", "phone", base+3)
	aliceTablet := location("alice", "tablet", base+2)
	bobPhone := location("bob", "phone", base+1)
	bobbyPhone := location("bobby", "phone", base+4)
	// '.' sorts before '/', so a backend keying on "user/device" strings
	// must still order by user first.
	dotPhone := location("bob.smith", "phone", base+5)
	mustAppend(t, s, bobbyPhone, alicePhone, dotPhone, bobPhone, aliceTablet)

	for _, tc := range []struct {
		name, user, device string
		want               []storage.Message
	}{
		{"all", "", "", []storage.Message{alicePhone, aliceTablet, bobPhone, dotPhone, bobbyPhone}},
		{"user", "alice", "", []storage.Message{alicePhone, aliceTablet}},
		{"user not prefix", "bob", "", []storage.Message{bobPhone}},
		{"user and device", "alice", "tablet", []storage.Message{aliceTablet}},
		{"device of every user", "", "phone", []storage.Message{alicePhone, bobPhone, dotPhone, bobbyPhone}},
		{"user with dot", "bob.smith", "", []storage.Message{dotPhone}},
		{"unknown user", "nobody", "", nil},
		{"prefix of user", "ali", "", nil},
		{"unknown device", "alice", "watch", nil},
		{"device of other user", "bob", "tablet", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkMessages(t, "LastLocations", lastLocations(t, s, tc.user, tc.device), tc.want)
		})
	}
}

func testLastEmpty(t *testing.T, open func(*testing.T) storage.Store) {
	s := open(t)
	for _, tc := range []struct{ user, device string }{{"", ""}, {"alice", ""}, {"alice", "phone"}} {
		t.Run(tc.user+"/"+tc.device, func(t *testing.T) {
			if got := lastLocations(t, s, tc.user, tc.device); len(got) != 0 {
				t.Errorf("LastLocations on empty store = %d messages, want 0", len(got))
			}
		})
	}
}

func testLastOtherTypes(t *testing.T, open func(*testing.T) storage.Store) {
	s := open(t)
	fix := location("alice", "phone", base+100)
	mustAppend(t, s, fix)
	mustAppend(t, s,
		event("alice", "phone", "lwt", base+500),
		event("alice", "phone", "card", base+600),
		event("alice", "watch", "transition", base+700), // a device without any fix
	)
	mustAppend(t, s, event("bob", "phone", "status", base+800))
	checkMessages(t, "LastLocations", lastLocations(t, s, "", ""), []storage.Message{fix})
}

func testDataUsersDevices(t *testing.T, open func(*testing.T) storage.Store) {
	s := open(t)
	check := func(t *testing.T, what string, got []string, err error, want []string) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if len(got) != len(want) || (len(want) > 0 && !slices.Equal(got, want)) {
			t.Errorf("%s = %q, want %q", what, got, want)
		}
	}

	t.Run("empty store", func(t *testing.T) {
		users, err := s.DataUsers(t.Context())
		check(t, "DataUsers", users, err, nil)
		devices, err := s.Devices(t.Context(), "alice")
		check(t, "Devices(alice)", devices, err, nil)
	})

	mustAppend(t, s,
		location("carol", "phone", base),
		location("alice", "tablet", base),
		location("alice", "phone", base),
		location("alice", "a-phone", base),
		event("bob", "watch", "card", base), // only a card still counts as data
	)
	mustAppend(t, s, location("alice", "phone", base+1), location("dave", "z", base), location("bob.smith", "phone", base))

	t.Run("DataUsers", func(t *testing.T) {
		users, err := s.DataUsers(t.Context())
		check(t, "DataUsers", users, err, []string{"alice", "bob", "bob.smith", "carol", "dave"})
	})
	for _, tc := range []struct {
		user string
		want []string
	}{
		{"alice", []string{"a-phone", "phone", "tablet"}},
		{"bob", []string{"watch"}},
		{"carol", []string{"phone"}},
		{"nobody", nil},
		{"ali", nil},
	} {
		t.Run("Devices "+tc.user, func(t *testing.T) {
			devices, err := s.Devices(t.Context(), tc.user)
			check(t, "Devices("+tc.user+")", devices, err, tc.want)
		})
	}
}

// testOddNames uses user and device names that are valid topic levels but
// special to glob patterns, SQL LIKE or path-like keys.
func testOddNames(t *testing.T, open func(*testing.T) storage.Store) {
	s := open(t)
	names := []string{`back\slash`, `star*`, `star`, `q?`, `under_score`, `per%cent`, `ünïcode`}
	var want []storage.Message
	for i, name := range names {
		m := location(name, name+`-dev\*?`, base+int64(i))
		want = append(want, m)
		mustAppend(t, s, m)
	}
	sortMessages(want)

	checkMessages(t, "LastLocations all", lastLocations(t, s, "", ""), want)
	users, err := s.DataUsers(t.Context())
	if err != nil {
		t.Fatalf("DataUsers: %v", err)
	}
	if sorted := slices.Sorted(slices.Values(names)); !slices.Equal(users, sorted) {
		t.Errorf("DataUsers = %q, want %q", users, sorted)
	}
	for _, m := range want {
		t.Run(m.User, func(t *testing.T) {
			checkMessages(t, "LastLocations(user)", lastLocations(t, s, m.User, ""), []storage.Message{m})
			checkMessages(t, "LastLocations(user, device)", lastLocations(t, s, m.User, m.Device), []storage.Message{m})
			checkMessages(t, "Locations", collect(t, s, allOf(m.User, m.Device)), []storage.Message{m})
			devices, err := s.Devices(t.Context(), m.User)
			if err != nil {
				t.Fatalf("Devices: %v", err)
			}
			if !slices.Equal(devices, []string{m.Device}) {
				t.Errorf("Devices = %q, want [%q]", devices, m.Device)
			}
		})
	}
}
