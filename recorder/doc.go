// Package recorder is wherehouse's ingest pipeline: every message, whatever
// transport brought it (embedded broker, external broker, HTTP), takes the
// same path: topic → user/device → parse and validate → durable group commit
// → acknowledgement → live listeners.
package recorder
