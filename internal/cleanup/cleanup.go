// Package cleanup collects undo steps for a multi-step operation, so that a
// failure part-way leaves nothing behind:
//
//	var cu cleanup.Cleanup
//	defer cu.Run()        // undoes everything unless Release was called
//	... cu.Add(undoStep) after each step ...
//	cu.Release()          // success: keep it all
//
// Not safe for concurrent use.
package cleanup

// Cleanup is a stack of undo functions.
type Cleanup struct {
	fns []func()
}

// Add pushes an undo step.
func (c *Cleanup) Add(f func()) { c.fns = append(c.fns, f) }

// Run runs the undo steps in reverse order, once.
func (c *Cleanup) Run() {
	for i := len(c.fns) - 1; i >= 0; i-- {
		c.fns[i]()
	}
	c.fns = nil
}

// Release forgets the undo steps: the operation succeeded.
func (c *Cleanup) Release() { c.fns = nil }
