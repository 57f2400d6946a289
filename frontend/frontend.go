// Package frontend serves the web app built from this folder by npm and
// esbuild into dist/ (gitignored; dist/.gitkeep keeps go:embed working). A
// binary built without the web app serves a page that says how to build it.
package frontend

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed all:dist
var dist embed.FS

const notBuilt = `<!doctype html><meta charset="utf-8"><title>wherehouse</title>
<h1>wherehouse is running</h1>
<p>The map app was not built into this binary. Build it with <code>make build</code>
(needs Node.js and npm), or use the API: <a href="/api/0/last">/api/0/last</a>.</p>`

// Built reports whether the web app is embedded.
func Built() bool {
	_, err := fs.Stat(dist, "dist/index.html")
	return err == nil
}

// Handler serves the embedded web app.
func Handler() http.Handler {
	if !Built() {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Write([]byte(notBuilt))
		})
	}
	sub, _ := fs.Sub(dist, "dist")
	return http.FileServerFS(sub)
}
