package importer

import (
	"bytes"
	"path/filepath"
	"strings"
)

// sniffSize is how much of a file Detect looks at.
const sniffSize = 8 << 10

// byExtension maps file name extensions to formats.
var byExtension = map[string]string{
	".rec": FormatRec, ".gpx": FormatGPX, ".geojson": FormatGeoJSON,
	".jsonl": FormatOwnTracks, ".ndjson": FormatOwnTracks, ".otrw": FormatWaypoints,
}

// Detect tells a file's format from its name, else from its first bytes
// (head): "" when it cannot tell. A .json file may be any of the JSON
// formats, so its content decides.
func Detect(name string, head []byte) string {
	if f, ok := byExtension[strings.ToLower(filepath.Ext(name))]; ok {
		return f
	}
	head = bytes.TrimPrefix(head, []byte("\xef\xbb\xbf"))
	head = bytes.TrimLeft(head, " \t\r\n")
	if len(head) == 0 {
		return ""
	}
	switch {
	case head[0] == '<':
		if bytes.Contains(head, []byte("<gpx")) {
			return FormatGPX
		}
		return ""
	case head[0] >= '0' && head[0] <= '9':
		if _, _, _, ok := splitRecLine(firstLine(head)); ok {
			return FormatRec
		}
		return ""
	case head[0] == '{' || head[0] == '[':
		return detectJSON(head)
	case bytes.HasPrefix(head, []byte(recorderTopicPrefix)):
		return FormatOwnTracks // mosquitto_sub -v: "topic payload" lines
	}
	return ""
}

const recorderTopicPrefix = "owntracks/"

// detectJSON tells the JSON formats apart by the keys they start with.
func detectJSON(head []byte) string {
	has := func(s string) bool { return bytes.Contains(head, []byte(s)) }
	switch {
	case has(`"timelineObjects"`), has(`"semanticSegments"`), has(`"rawSignals"`), has(`"timelinePath"`),
		has(`"latitudeE7"`), has(`"startTime"`) && has(`"endTime"`):
		return FormatTakeout
	case has(`"FeatureCollection"`), has(`"Feature"`):
		return FormatGeoJSON
	case has(`"_type"`):
		return FormatOwnTracks
	}
	return ""
}

func firstLine(b []byte) []byte {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		return b[:i]
	}
	return b
}
