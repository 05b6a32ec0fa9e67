package apiserver

import (
	"slices"
	"testing"

	"github.com/berth-project/berth/errdefs"
)

func TestParseFilters(t *testing.T) {
	for _, raw := range []string{`{"dangling":{"true":true},"label":{"a=b":true}}`, `{"dangling":["true"],"label":["a=b"]}`} {
		f, err := parseFilters(raw, "dangling", "label")
		if err != nil {
			t.Fatalf("%s: %v", raw, err)
		}
		d, err := f.bool("dangling")
		if err != nil || d == nil || !*d || !slices.Equal(f["label"], []string{"a=b"}) {
			t.Errorf("%s: %v %v %v", raw, f, d, err)
		}
	}
	if _, err := parseFilters(`{"until":["1h"]}`, "dangling"); !errdefs.Invalid(err) {
		t.Errorf("unknown filter: %v", err)
	}
	f, _ := parseFilters(`{"dangling":["maybe"]}`, "dangling")
	if _, err := f.bool("dangling"); !errdefs.Invalid(err) {
		t.Errorf("bad boolean: %v", err)
	}
}

func TestVersionLess(t *testing.T) {
	if !versionLess("1.9", "1.24") || versionLess("1.50", "1.24") || versionLess("1.24", "1.24") {
		t.Error("API versions compare as numbers, not strings")
	}
}
