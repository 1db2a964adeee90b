package engineapi

import (
	"time"

	"github.com/gin-gonic/gin"
)

// RequestObserver is told of each API request as it ends.
type RequestObserver interface {
	// ObserveRequest is told the request's route (the pattern it matched,
	// "/containers/:id/json", or "unmatched"), method, status and how long
	// it took. A stream (logs, events, attach) ends when its client leaves.
	ObserveRequest(route, method string, status int, elapsed time.Duration)
}

// observeRequests is the middleware that tells obs of each request. The
// route is the pattern, not the path, so that one route is one series
// whatever IDs its requests name.
func observeRequests(obs RequestObserver) gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		route := c.FullPath()
		if route == "" {
			route = "unmatched"
		}
		obs.ObserveRequest(route, c.Request.Method, c.Writer.Status(), time.Since(start))
	}
}
