// Package frontend serves the web app built from this folder by npm and
// esbuild into dist/ (gitignored, nothing generated is committed). The app
// is embedded only in builds with the "webapp" tag, which `make build` sets
// once dist/ exists; a plain `go build` works without npm and serves a page
// that says how to build the app.
package frontend

import (
	"io/fs"
	"net/http"
)

const notBuilt = `<!doctype html><meta charset="utf-8"><title>wherehouse</title>
<h1>wherehouse is running</h1>
<p>The map app was not built into this binary. Build it with <code>make build</code>
(needs Node.js and npm), or use the API: <a href="/api/0/last">/api/0/last</a>.</p>`

// Built reports whether the web app is embedded.
func Built() bool {
	app := files()
	if app == nil {
		return false
	}
	_, err := fs.Stat(app, "index.html")
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
	return http.FileServerFS(files())
}
