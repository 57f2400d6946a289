// Package webhook delivers geofence events to users' webhooks.
//
// Events are queued as deliveries in the store's outbox in the same
// transaction as the transition that caused them (storage.Events), so
// none is lost across a crash. A Worker POSTs each due delivery's JSON
// body to its webhook's URL and records the attempt: a 2xx response
// delivers it; anything else (a network error, a timeout, a non-2xx
// status, a redirect, which is never followed) schedules a retry after
// 2 s doubling per attempt up to Options.MaxBackoff, plus up to 10 %
// jitter, until Options.MaxAttempts have failed. A delivery whose webhook
// was deleted fails at once. Delivery is at least once and unordered:
// receivers should deduplicate by the X-Wherehouse-Delivery header (or the
// event's "id") and order by the event's "tst".
//
// Each POST carries:
//
//	Content-Type: application/json
//	User-Agent: wherehouse/<version>
//	X-Wherehouse-Delivery: <delivery id, the same on every retry>
//	X-Wherehouse-Event: enter | leave
//	X-Wherehouse-Signature: sha256=<hex HMAC-SHA256 of the body, keyed by the webhook's secret>
//
// The signature is left out when the webhook has no secret. A receiver
// checks it over the raw body bytes, before parsing, in constant time;
// in Go with Verify, in Python:
//
//	import hashlib, hmac
//
//	def verify(secret: bytes, body: bytes, header: str) -> bool:
//	    want = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
//	    return hmac.compare_digest(want.encode(), header.encode())
//
// or in Node.js:
//
//	const crypto = require("crypto");
//	function verify(secret, body, header) {
//	  const want = Buffer.from("sha256=" + crypto.createHmac("sha256", secret).update(body).digest("hex"));
//	  const got = Buffer.from(header || "");
//	  return got.length === want.length && crypto.timingSafeEqual(got, want);
//	}
//
// There is deliberately no SSRF filtering: self-hosters point webhooks at
// Home Assistant or Node-RED on their LAN or on loopback, so private and
// loopback addresses are allowed. Anyone who can create a webhook can make
// the server POST to any address it reaches.
package webhook
