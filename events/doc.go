// Package events evaluates geofences on every stored location and turns
// enter/leave transitions into events that are stored and delivered.
//
// The Engine observes the recorder: each newly stored location is checked
// against the server-side fences that apply to its device (found through
// geo's R-tree, so the cost does not grow with the number of fences) and
// against the device's own regions (its waypoints). A transition is written
// in one durable transaction with the fence states it changed and the
// webhook deliveries it causes, then published:
//
//   - as an OwnTracks transition on owntracks/<user>/<device>/event, so
//     friends' apps show "arrived at Home" (server fences only: the app
//     reports its own regions itself). The payload carries
//     "source":"wherehouse" so a server reading the broker never ingests it
//     as a device message;
//   - as JSON on <event-topic>/<user>/<device> for automation tools;
//   - to the websocket /ws/events, and to webhooks through the outbox.
//
// Transitions the apps report themselves (_type transition) are stored and
// delivered the same way, with source "device".
//
// Late or out-of-order fixes (older than the newest fix evaluated for the
// device) never change state. Each device's newest evaluated fix is kept as
// a watermark, so after a crash the locations stored since are evaluated
// again; event IDs are derived from the transition itself, so nothing is
// delivered twice.
package events
