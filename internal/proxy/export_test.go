package proxy

// WorkersStarted is the number of serving goroutines s has started.
func WorkersStarted(s *Server) int64 { return s.workers.started.Load() }
