// Command recgen writes a synthetic OwnTracks Recorder store for the
// "history at scale" step of `make bench` (bench/run.sh): the files that
// `wherehouse import` reads and bench/recscan scans.
//
// It writes -points location fixes spread over -devices devices of -users
// users, as the Recorder lays them out, one file per device and month:
//
//	DIR/rec/user<u>/dev<n>/YYYY-MM.rec
//
// Device n belongs to user n % -users. Each line is what the Recorder's
// putrec() writes for a location ("%s\t%-18s\t%s\n": the fix's tst as UTC
// time, "*" padded to 18, the payload):
//
//	2025-01-01T00:00:00Z	*                 	{"_type":"location","tid":"00","lat":45.0000000,...}
//
// The payloads mirror bench/loadgen's (about 205 bytes: moving lat/lon,
// alt, acc, vac, vel, cog, slowly draining batt, bs, conn, m, t, p, tst,
// created_at). Fixes of one device are -interval apart on average, each gap
// drawn uniformly between half and one and a half times it (26s: 13–39 s),
// starting at -start plus n × -stagger. Every device has its own random
// source seeded from -seed and its number, so the output is the same for the
// same flags, whatever -workers is.
//
// It prints one line:
//
//	RESULT points=1000000 devices=10 users=3 files=10 bytes=246012345 bytes_per_point=246.0 first=... last=... seconds=2.1
package main
