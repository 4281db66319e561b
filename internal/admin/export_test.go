package admin

import "time"

// SetHeartbeat changes how often an idle event stream gets a comment.
func (s *Server) SetHeartbeat(d time.Duration) { s.heartbeat = d }
