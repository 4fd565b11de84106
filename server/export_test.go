package server

// CachedLaunch reports whether the server's labs cache holds results of the
// launch id; only tests use it, to check what logout leaves behind.
func CachedLaunch(s *Server, id string) bool { return s.labsCache.Get(id) != nil }
