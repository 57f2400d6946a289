//go:build !webapp

package frontend

import "io/fs"

// files returns nil: this binary was built without the web app.
func files() fs.FS { return nil }
