// Command loadgen drives an MQTT broker with OwnTracks location traffic and
// prints one machine-readable result line. It is the load generator behind
// `make bench` (bench/run.sh).
//
// Each publisher is one MQTT connection publishing realistic location
// payloads (about 200 bytes, moving lat/lon, increasing tst) to its own
// topic, asynchronously, with at most -inflight messages unacknowledged. On
// wherehouse's embedded broker a QoS 1 PUBACK is sent only after the durable
// commit, so acknowledged messages per second are stored messages per second.
//
// Optional parts run alongside the publishers in the same process:
//
//   - -count-sub subscribes to -sub-topic at QoS 1 before publishing and
//     counts deliveries: the relay rate of a plain broker (the baseline).
//   - -metrics reads wherehouse_messages_stored_total{type="location"} from a
//     wherehouse /metrics endpoint before publishing and waits until it has
//     grown by the number of messages acknowledged: the stored rate when
//     wherehouse sits behind an external broker, and a check that nothing
//     acknowledged went missing.
//   - -query-base queries /api/0/last and /api/0/locations in a loop while
//     the publishers run.
//
// The output is one line:
//
//	RESULT name=embedded msgs=200000 seconds=9.8 rate=20408 p50_ms=... p99_ms=... errors=0 complete=true ...
//
// followed by sub_*, stored/store_*, and q_* fields when those parts ran.
// Rates count from the first publish. loadgen exits 1 when the run did not
// complete (timeout, errors), after printing what it measured.
package main
