// Package retention deletes history: on request (a time range, single
// points, a device, everything of a user), by each user's retention policy
// in the background, and hides points without deleting them. Every
// deletion goes through a Manager, so the components that cache device
// state (the fence engine, the device tracker) forget what was deleted.
package retention
