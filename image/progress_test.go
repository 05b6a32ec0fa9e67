package image

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestJSONProgressIsDockersFormat(t *testing.T) {
	var buf bytes.Buffer
	show := JSONProgress(&buf)
	show(Progress{ID: "latest", Status: "Pulling from library/busybox"})
	show(Progress{ID: "0123456789ab", Status: "Downloading", Current: 1500000, Total: 3000000})
	show(Progress{ID: "0123456789ab", Status: "Pull complete"})
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines: %s", len(lines), buf.String())
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(lines[1]), &m); err != nil {
		t.Fatal(err)
	}
	detail, _ := m["progressDetail"].(map[string]any)
	if m["id"] != "0123456789ab" || m["status"] != "Downloading" || detail["current"] != 1.5e6 || detail["total"] != 3e6 ||
		!strings.HasPrefix(m["progress"].(string), "[=========================>") || !strings.HasSuffix(m["progress"].(string), "1.5MB/3MB") {
		t.Errorf("downloading line: %s", lines[1])
	}
	if strings.Contains(lines[2], "progressDetail") {
		t.Errorf("a state line carries byte counts: %s", lines[2])
	}
}
