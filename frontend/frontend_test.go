package frontend

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// Without the webapp tag (plain go build, go test) the binary serves a page
// that says how to build the app.
func TestHandlerWithoutApp(t *testing.T) {
	if Built() {
		t.Skip("built with the webapp tag")
	}
	w := httptest.NewRecorder()
	Handler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/", nil))
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "make build") {
		t.Errorf("GET / = %d %q, want the build hint", w.Code, w.Body.String())
	}
}
