// Package storage defines what wherehouse keeps and how the rest of the
// program reaches it: received messages (history), last positions and
// accounts. Backends live in sub-packages (storage/embedded) and are all held
// to the same contract by storage/storetest.
package storage
