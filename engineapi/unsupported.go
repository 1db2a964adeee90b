package engineapi

import (
	"net/http"
	"regexp"

	"github.com/gin-gonic/gin"
)

// unsupported are Engine API endpoints shoal does not serve (yet), with what the
// user reads instead of a bare "page not found" (the request path is matched
// after its /v1.NN prefix is stripped).
var unsupported = []struct {
	path *regexp.Regexp
	msg  string
}{
	{regexp.MustCompile(`^/plugins(/|$)`), "plugins are not supported by shoal"},
	{regexp.MustCompile(`^/(build|session)(/|$)`), "shoal does not build images: build them elsewhere, then docker load them or push them to a registry"},
	{regexp.MustCompile(`^/containers/[^/]+/(attach|changes|export|update|rename|resize|wait)$`),
		"this container operation is not supported by shoal: task containers are read and debugged with docker ps, inspect, logs, exec, top and stats"},
}

// noRoute answers a request no route serves: a clear 501 for a Docker endpoint
// shoal does not offer, else Docker's 404 "page not found".
func noRoute(c *gin.Context) {
	for _, u := range unsupported {
		if u.path.MatchString(c.Request.URL.Path) {
			writeError(c, &apiError{status: http.StatusNotImplemented, msg: u.msg})
			return
		}
	}
	writeError(c, notFoundError("page not found"))
}
