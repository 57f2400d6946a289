// Package importer brings location history from elsewhere into the store:
// an OwnTracks Recorder store (its .rec files, cards, regions and last
// positions), OwnTracks JSON lines, GPX, GeoJSON and Google location
// history (Takeout's Records.json and Semantic Location History months, the
// phone's Timeline.json, the iOS export).
//
// Every message goes through recorder.Parse, so imported data meets the same
// rules as live data, and is appended in large batches. The store skips
// messages it already holds, so importing the same file twice, or again
// after an interruption, stores nothing twice.
package importer
