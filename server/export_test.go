package server

// CachedLaunch reports whether the server's labs cache holds results of the
// launch id; only tests use it, to check what logout leaves behind.
func CachedLaunch(s *Server, id string) bool { return s.labsCache.Get(id) != nil }

// CacheStats reports the launches the server's labs cache holds and their
// estimated bytes.
func CacheStats(s *Server) (entries int, bytes int64) { return s.labsCache.Stats() }

// ForgetCached drops launch id's cached results.
func ForgetCached(s *Server, id string) { s.labsCache.Forget(id) }
