package recorder

import (
	"os"
	"path/filepath"
	"testing"
)

// SeedPayloads returns every payload under testdata/good and testdata/bad,
// the seed corpus the fuzz targets of this package share.
func SeedPayloads(tb testing.TB) [][]byte {
	tb.Helper()
	var out [][]byte
	for _, dir := range []string{"good", "bad"} {
		files, err := filepath.Glob(filepath.Join("testdata", dir, "*.json"))
		if err != nil {
			tb.Fatal(err)
		}
		for _, file := range files {
			b, err := os.ReadFile(file)
			if err != nil {
				tb.Fatal(err)
			}
			out = append(out, b)
		}
	}
	return out
}
