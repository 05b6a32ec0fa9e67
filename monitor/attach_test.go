package monitor

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"
)

// A client that stops reading holds back neither the output nor the other
// clients: broadcast never waits on it, it is dropped once its queue is
// full, and a reading client gets every chunk, framed, in order.
func TestStalledAttachmentIsDropped(t *testing.T) {
	p := newProc("x", StdioConfig{})
	stalled, stalledPeer := net.Pipe() // nobody reads stalledPeer
	defer stalledPeer.Close()
	reader, readerPeer := net.Pipe()
	slow := newAttachment(stalled, AttachConfig{Stdout: true})
	fast := newAttachment(reader, AttachConfig{Stdout: true, Stderr: true})
	p.atts[slow] = struct{}{}
	p.atts[fast] = struct{}{}

	var got bytes.Buffer
	read := make(chan struct{})
	go func() { io.Copy(&got, readerPeer); close(read) }()

	const chunks = attachQueue * 2
	start := time.Now()
	for i := 0; i < chunks; i++ {
		p.broadcast(1, []byte{byte(i)})
		// The reading client keeps up: let it drain now and then.
		for i%64 == 63 && len(fast.out) > 0 && time.Since(start) < 5*time.Second {
			time.Sleep(time.Millisecond)
		}
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("broadcast waited %v on a client that does not read", d)
	}
	p.mu.Lock()
	_, kept := p.atts[slow]
	for a := range p.atts {
		close(a.out)
	}
	p.atts = nil
	p.mu.Unlock()
	if kept {
		t.Error("the stalled client was not dropped")
	}
	select {
	case <-read:
	case <-time.After(10 * time.Second):
		t.Fatal("the reading client's output never ended")
	}
	b := got.Bytes()
	for i := 0; i < chunks; i++ {
		if len(b) < 9 || b[0] != 1 || binary.BigEndian.Uint32(b[4:8]) != 1 || b[8] != byte(i) {
			t.Fatalf("chunk %d: framed output wrong or missing (%d bytes left)", i, len(b))
		}
		b = b[9:]
	}
	stalledPeer.Close() // else its writer waits out the write timeout
	<-slow.done
}
