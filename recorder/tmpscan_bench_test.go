package recorder

import "testing"

const tmpAndroid = `{"_type":"location","_id":"5c2f9a1e","acc":13,"alt":112,"batt":87,"bs":1,"conn":"w","created_at":1714557123,"inregions":["Home","Berlin"],"lat":52.5200066,"lon":13.404954,"m":1,"source":"fused","t":"u","tid":"ph","tst":1714557120,"vac":3,"vel":0,"BSSID":"aa:bb:cc:dd:ee:ff","SSID":"HomeNet"}`

func BenchmarkTmpScan(b *testing.B) {
	p := []byte(tmpAndroid)
	b.ReportAllocs()
	for b.Loop() {
		var o object
		if err := scanObject(p, &o); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkTmpGet(b *testing.B) {
	p := []byte(tmpAndroid)
	var o object
	if err := scanObject(p, &o); err != nil {
		b.Fatal(err)
	}
	names := []string{"_type", "tst", "lat", "lon", "acc", "alt", "vac", "vel", "cog", "batt", "bs", "p", "created_at", "dist", "tid"}
	b.ReportAllocs()
	for b.Loop() {
		for _, n := range names {
			o.get(n)
		}
	}
}
