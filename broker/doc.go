// Package broker connects wherehouse to MQTT: either the embedded broker
// (mochi-mqtt, with wherehouse's own deny-by-default auth and ACL hook, TCP,
// TLS and MQTT over WebSocket) or an external broker reached as a client
// (paho), optionally through a shared subscription so several wherehouse
// instances split one stream. Both feed the recorder.
package broker
