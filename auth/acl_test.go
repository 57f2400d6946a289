package auth_test

import (
	"testing"

	"github.com/wherehouse/wherehouse/auth"
	"github.com/wherehouse/wherehouse/storage"
)

var (
	alice = storage.User{Name: "alice"}
	root  = storage.User{Name: "root", Admin: true}
)

type aclCase struct {
	user  storage.User
	topic string
	want  bool
}

func runACL(t *testing.T, name string, fn func(storage.User, string) bool, tests []aclCase) {
	t.Helper()
	for _, tc := range tests {
		t.Run(tc.user.Name+"|"+tc.topic, func(t *testing.T) {
			if got := fn(tc.user, tc.topic); got != tc.want {
				t.Errorf("%s(%s, %q) = %v, want %v", name, tc.user.Name, tc.topic, got, tc.want)
			}
		})
	}
}

func TestCanPublish(t *testing.T) {
	runACL(t, "CanPublish", auth.CanPublish, []aclCase{
		// Own tree.
		{alice, "owntracks/alice/pixel7", true},
		{alice, "owntracks/alice/pixel7/event", true},
		{alice, "owntracks/alice/pixel7/info", true},
		{alice, "owntracks/alice/pixel7/waypoints", true},
		{alice, "owntracks/Alice/pixel7", true}, // the apps may keep the user's capitals
		{alice, "owntracks/ALICE/Pixel7/event", true},
		// Not own tree.
		{alice, "owntracks/bob/iphone", false},
		{alice, "owntracks/bob/iphone/cmd", false},
		{alice, "owntracks/alicex/pixel7", false},
		{alice, "owntracks/alic/pixel7", false},
		{alice, "owntracks/alice", false}, // only two levels
		{alice, "owntracks/alice/", false},
		{alice, "owntracks//pixel7", false},
		{alice, "owntracks", false},
		{alice, "", false},
		{alice, "other/alice/pixel7", false},
		{alice, "/owntracks/alice/pixel7", false},
		{alice, "alice/pixel7", false},
		{alice, "$SYS/broker/load", false},
		// Admin anywhere.
		{root, "owntracks/bob/iphone/cmd", true},
		{root, "owntracks/alice/pixel7", true},
		{root, "anything/else", true},
	})
}

func TestCanSubscribe(t *testing.T) {
	runACL(t, "CanSubscribe", auth.CanSubscribe, []aclCase{
		// Own tree, literally and with wildcards.
		{alice, "owntracks/alice/pixel7", true},
		{alice, "owntracks/Alice/pixel7/cmd", true},
		{alice, "owntracks/alice/#", true},
		{alice, "owntracks/alice/+/cmd", true},
		// Friends' wildcards, as the apps subscribe: allowed, every
		// delivery is then checked with CanRead.
		{alice, "owntracks/+/+", true},
		{alice, "owntracks/+/+/event", true},
		{alice, "owntracks/+/+/info", true},
		{alice, "owntracks/+/+/status", true},
		{alice, "owntracks/#", true},
		// Outside the owntracks tree.
		{alice, "#", false},
		{alice, "+", false},
		{alice, "+/+/+", false},
		{alice, "+/alice/pixel7", false},
		{alice, "$SYS/#", false},
		{alice, "$SYS/broker/load", false},
		{alice, "other/#", false},
		{alice, "OwnTracks/+/+", false},
		// Another user's topic, literally.
		{alice, "owntracks/bob/iphone", false},
		{alice, "owntracks/bob/iphone/event", false},
		{alice, "owntracks/alice", false},
		{alice, "", false},
		// Admin anywhere.
		{root, "#", true},
		{root, "$SYS/#", true},
		{root, "owntracks/bob/iphone", true},
	})
}

func TestCanRead(t *testing.T) {
	runACL(t, "CanRead", auth.CanRead, []aclCase{
		{alice, "owntracks/alice/pixel7", true},
		{alice, "owntracks/alice/pixel7/cmd", true},
		{alice, "owntracks/ALICE/pixel7/event", true},
		{alice, "owntracks/bob/iphone", false},
		{alice, "owntracks/bob/iphone/info", false},
		{alice, "owntracks/alice", false},
		{alice, "owntracks", false},
		{alice, "other/alice/pixel7", false},
		{alice, "$SYS/broker/load", false},
		{root, "owntracks/bob/iphone", true},
		{root, "$SYS/broker/load", true},
	})
}

func TestCanSee(t *testing.T) {
	runACL(t, "CanSee", auth.CanSee, []aclCase{
		{alice, "alice", true},
		{alice, "bob", false},
		{alice, "", false},
		{alice, "alicex", false},
		{root, "bob", true},
		{root, "alice", true},
	})
}
