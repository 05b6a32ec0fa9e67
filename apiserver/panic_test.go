package apiserver

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// A handler that panics answers 500 and the server goes on serving.
func TestPanicAnswers500(t *testing.T) {
	s := &Server{mux: http.NewServeMux()}
	s.mux.HandleFunc("GET /boom", func(http.ResponseWriter, *http.Request) { panic("boom") })
	s.mux.HandleFunc("GET /fine", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	for _, c := range []struct {
		path string
		want int
	}{{"/boom", http.StatusInternalServerError}, {"/fine", http.StatusNoContent}, {"/boom", http.StatusInternalServerError}} {
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, httptest.NewRequest("GET", c.path, nil))
		if rec.Code != c.want {
			t.Errorf("%s: %d, want %d (%s)", c.path, rec.Code, c.want, rec.Body)
		}
	}
}
