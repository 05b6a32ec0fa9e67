package syncpipe

import (
	"encoding/binary"
	"io"
	"os"
	"testing"
)

func TestBootstrapFraming(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	c := New(w)
	err = c.WriteBootstrap(Bootstrap{
		Join:        []Join{{Type: "network", Path: "/proc/1/ns/net"}},
		CloneFlags:  0x20000,
		TimeOffsets: []string{"boottime 10 0"},
	})
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(r)
	n := binary.LittleEndian.Uint32(data)
	body := string(data[4:])
	want := "join network /proc/1/ns/net\nclone 131072\ntimens boottime 10 0\n"
	if int(n) != len(body) || body != want {
		t.Errorf("length %d body %q, want %q", n, body, want)
	}
	if err := New(w).WriteBootstrap(Bootstrap{Join: []Join{{Type: "net", Path: "a\nb"}}}); err == nil {
		t.Error("newline in a namespace path accepted")
	}
}

func TestMessagesRoundTrip(t *testing.T) {
	r, w, _ := os.Pipe()
	go func() {
		c := New(w)
		c.Send(Message{Type: TypePid, Pid: 42})
		c.Send(Message{Type: TypeError, Message: "boom"})
		w.Close()
	}()
	c := New(r)
	if m, err := c.Expect(TypePid); err != nil || m.Pid != 42 {
		t.Errorf("pid message: %+v %v", m, err)
	}
	if _, err := c.Recv(); err == nil || err.Error() != "boom" {
		t.Errorf("error message: %v", err)
	}
	if _, err := c.Recv(); err != io.EOF {
		t.Errorf("end: %v", err)
	}
}
