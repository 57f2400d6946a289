// Command recscan is the baseline of the month query in the "history at
// scale" step of `make bench` (bench/run.sh): it answers
// /api/0/locations?format=json the way the OwnTracks Recorder does, from
// .rec files, and writes the answer to stdout.
//
// As the Recorder's locations() in storage.c, it picks the device's
// rec/<user>/<device>/YYYY-MM.rec files whose month overlaps the range,
// reads them line by line, parses each line's time column, keeps the
// location lines ("Z\t* ") in the range, decodes their JSON payload into a
// tree, keeps those whose _type is "location", adds isorcv (the line's
// time), isotst and disptst (from tst), holds them all, and then writes
// the whole answer:
//
//	{"count":N,"data":[{...},...],"status":200}
//
// It leaves out what the Recorder does on top and would only make the
// baseline slower: the geohash (ghash) of every point and its reverse-geo
// cache lookup. The range is inclusive at both ends, as wherehouse's, so
// both answers count the same points (the Recorder's own test is
// exclusive).
//
// Usage:
//
//	recscan -dir STORE -user U -device D -from 2025-01-01T00:00:00 -to 2025-01-31T23:59:59 >/dev/null
//
// It prints "RESULT count=N bytes=B seconds=S" on stderr.
package main
