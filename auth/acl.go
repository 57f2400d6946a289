package auth

import (
	"strings"

	"github.com/wherehouse/wherehouse/storage"
)

// TopicPrefix is the first level of every OwnTracks topic.
const TopicPrefix = "owntracks"

// CanPublish reports whether u may publish to topic: admins anywhere, a
// user only under owntracks/<own name>/<device>/...
func CanPublish(u storage.User, topic string) bool {
	if u.Admin {
		return true
	}
	parts := strings.Split(topic, "/")
	return len(parts) >= 3 && parts[0] == TopicPrefix && strings.EqualFold(parts[1], u.Name) && parts[2] != ""
}

// CanSubscribe reports whether u may subscribe to filter. The apps
// subscribe to friends with wildcards (owntracks/+/+, owntracks/+/+/event),
// so a wildcard filter inside the owntracks tree is allowed and each
// delivery is then checked with CanRead. A filter without wildcards must be
// readable itself.
func CanSubscribe(u storage.User, filter string) bool {
	if u.Admin {
		return true
	}
	if !strings.ContainsAny(filter, "+#") {
		return CanRead(u, filter)
	}
	first, _, _ := strings.Cut(filter, "/")
	return first == TopicPrefix
}

// CanRead reports whether a message on topic may be delivered to u.
func CanRead(u storage.User, topic string) bool {
	if u.Admin {
		return true
	}
	parts := strings.Split(topic, "/")
	return len(parts) >= 3 && parts[0] == TopicPrefix && strings.EqualFold(parts[1], u.Name)
}

// CanSee reports whether u may see the data of user owner.
func CanSee(u storage.User, owner string) bool {
	return u.Admin || u.Name == owner
}
