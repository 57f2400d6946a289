package recorder_test

import (
	"testing"

	"github.com/wherehouse/wherehouse/recorder"
)

// benchPayloads are location messages as the apps publish them at high
// rates: Android (owntracks/android, 2.4) with Wi-Fi and region fields, and
// iOS (owntracks/ios, 17.x) with its escaped topic and inrids.
var benchPayloads = []struct {
	name    string
	topic   string
	payload string
}{
	{"android", "owntracks/alice/pixel7",
		`{"_type":"location","_id":"5c2f9a1e","acc":13,"alt":112,"batt":87,"bs":1,"conn":"w",` +
			`"created_at":1714557123,"inregions":["Home","Berlin"],"lat":52.5200066,"lon":13.404954,` +
			`"m":1,"source":"fused","t":"u","tid":"ph","tst":1714557120,"vac":3,"vel":0,` +
			`"BSSID":"aa:bb:cc:dd:ee:ff","SSID":"HomeNet"}`},
	{"ios", "owntracks/bob/iphone",
		`{"cog":-1,"batt":56,"lon":2.352222,"acc":5,"p":100.834,"bs":1,"inrids":["6631d2b0d8e7b3a1"],` +
			`"inregions":["Home"],"vel":0,"topic":"owntracks\/bob\/iphone","SSID":"Caf\u00e9 Wi-Fi",` +
			`"BSSID":"11:22:33:44:55:66","conn":"w","_type":"location","tid":"ip","alt":38,"vac":3,` +
			`"lat":48.856614,"created_at":1714557203,"m":2,"t":"t","tst":1714557200}`},
}

func BenchmarkParse(b *testing.B) {
	for _, bp := range benchPayloads {
		payload := []byte(bp.payload)
		b.Run(bp.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(payload)))
			for b.Loop() {
				if _, err := recorder.Parse(bp.topic, payload, received); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
