package api

import (
	"errors"
	"io"
	"mime"
	"net/http"

	"github.com/labstack/echo/v5"

	"github.com/wherehouse/wherehouse/importer"
)

// importUpload serves POST /api/v1/import?format=&user=&device=&name=
// (admins only): the body is one file in any format "wherehouse import"
// reads, sent as is or as the first file of a multipart/form-data upload
// (curl -F file=@Records.json). It is read as it arrives, never held
// whole. The answer is the import's summary; 400 with the summary so far
// when the file is not what it claims to be.
func (s *Server) importUpload(c *echo.Context) error {
	if s.Importer == nil {
		return errNotFound
	}
	r := c.Request()
	q := r.URL.Query()
	src := importer.Source{Name: q.Get("name"), Format: q.Get("format"), User: q.Get("user"), Device: q.Get("device")}
	body := io.Reader(r.Body)
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == "multipart/form-data" {
		mr, err := r.MultipartReader()
		if err != nil {
			return errBadRequest("read the upload: " + err.Error())
		}
		for {
			part, err := mr.NextPart()
			if err != nil {
				return errBadRequest("the upload has no file in it")
			}
			if part.FileName() != "" {
				if src.Name == "" {
					src.Name = part.FileName()
				}
				body = part
				break
			}
		}
	}
	if src.Name == "" {
		src.Name = "upload"
	}
	sum, err := s.Importer.Import(r.Context(), body, src, importer.RunOptions{})
	switch {
	case err == nil:
		s.Log.Info("import done", "user", currentUser(c).Name, "name", src.Name, "new", sum.New, "existing", sum.Existing, "skipped", sum.Skipped)
		return c.JSON(http.StatusOK, sum)
	case errors.Is(err, importer.ErrInput):
		return c.JSON(http.StatusBadRequest, importAnswer{
			apiError: apiError{Status: http.StatusBadRequest, Code: "bad_input", Message: err.Error()},
			Summary:  &sum,
		})
	}
	return err
}

// importAnswer is a failed import's answer: the error and what was done.
type importAnswer struct {
	apiError
	Summary *importer.Summary `json:"summary,omitempty"`
}
