//go:build !unix

package upstream

// alive cannot peek portably; the connection is assumed usable.
func (c *Conn) alive() bool { return true }

// tryRead reports "nothing yet": TryFill is an optimisation only.
func (c *Conn) tryRead(uintptr) bool { c.tn = -1; return true }
