package api

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wherehouse/wherehouse/auth"
	"github.com/wherehouse/wherehouse/recorder"
	"github.com/wherehouse/wherehouse/storage"
	"github.com/wherehouse/wherehouse/storage/embedded"
)

func TestDumpRender(t *testing.T) {
	out := os.Getenv("DUMP_OUT")
	if out == "" {
		t.Skip()
	}
	ctx := context.Background()
	store, err := embedded.Open(ctx, t.TempDir(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	payloads := []string{
		`{"_type":"location","acc":12,"alt":40,"batt":81,"tid":"ph","tst":%d,"vel":4}`,
		`{"_type":"location","isotst":"x","tid":"ph","tst":%d}`,
		`{"_type":"location","tid":"i\/p","topic":"owntracks\/bob\/iphone","tst":%d}`,
		`{"_type":"location","t\u0069d":"zz","tst":%d,"s":"caf\u00e9"}`,
		" {\n \"_type\" : \"location\" ,\n \"acc\" : 5 , \"tst\": %d , \"alt\":-3.5e2, \"batt\" : 7 }\n",
		`{"_type":"location","tid":"ph","tid":"qq","tst":%d,"n":[1,{"acc":2}],"o":{"vel":"x"},"vel":true,"alt":null}`,
		`{"_type":"location","desc":"isotst","tst":%d}`,
		`{"_type":"location","desc":"disptst \"isorcv\"","tst":%d,"batt":"a\\\"b"}`,
		`{"_type":"location","tst":%d,"inregions":["isorcv"]}`,
		`{"tst":%d}`,
	}
	var msgs []storage.Message
	tsts := []int64{-86401, -1, 0, 1, 86399, 86400, 1700000000, 1700003599, 253402300799, 253402300800}
	for i, tst := range tsts {
		for j, p := range payloads {
			rcv := tst*1000 + int64(j*37) - 500
			msgs = append(msgs, storage.Message{User: "u", Device: "d", Type: "location", TST: tst + int64(j), Topic: "owntracks/u/d",
				Received: rcv, Lat: 52.5 + float64(i)/7, Lon: -13.4 - float64(j)/3, Payload: fmt.Appendf(nil, p, tst+int64(j))})
		}
	}
	for i := range 5000 {
		tst := int64(1700000000 + 29*i)
		msgs = append(msgs, storage.Message{User: "u", Device: "d", Type: "location", TST: tst, Topic: "owntracks/u/d",
			Received: tst*1000 + 999, Lat: 52.5 + float64(i)/1e5, Lon: 13.4,
			Payload: fmt.Appendf(nil, payloads[0], tst)})
	}
	if _, err := store.Append(ctx, msgs); err != nil {
		t.Fatal(err)
	}
	accounts := auth.NewAccounts(store)
	if err := accounts.Add(ctx, "u", "password-1", false); err != nil {
		t.Fatal(err)
	}
	policy, _ := auth.NewPolicy(ctx, store)
	s := New(Deps{Store: store, Accounts: accounts, Policy: policy, Live: recorder.NewLive(nil),
		Log: slog.New(slog.DiscardHandler), Gatherer: prometheus.NewRegistry(), Version: "dump\"v"})
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, q := range []string{"format=json", "format=geojson", "format=json&fields=tid,isotst,lat", "format=json&limit=7", "format=geojson&limit=3", "format=json&from=1970-01-01&to=9999-12-31T23:59:59", "format=geojson&from=1970-01-01&to=9999-12-31T23:59:59", "from=1700000000&to=1700100000", "format=json&from=0&to=300000000000", "format=geojson&from=0&to=300000000000"} {
		req := httptest.NewRequest(http.MethodGet, "/api/0/locations?user=u&device=d&"+q, nil)
		req.SetBasicAuth("u", "password-1")
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		fmt.Fprintf(f, "== %s %d %v\n%s\n", q, w.Code, w.Header(), w.Body)
	}
}
