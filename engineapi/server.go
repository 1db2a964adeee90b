// Package engineapi serves the Docker Engine API over HTTP so that the stock docker CLI
// drives shoal as it drives Docker Engine in swarm mode. It routes requests (with or
// without a /v1.NN version prefix), validates and translates them, and calls the
// control plane (Swarm), the node's containers (Containers) and its images (Images).
// It never touches Raft, runc or netlink itself.
package engineapi

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/moby/moby/api/types/registry"
)

// APIVersion is the highest Engine API version shoal speaks; MinAPIVersion the lowest.
const (
	APIVersion    = "1.51"
	MinAPIVersion = "1.24"
)

// maxBodyBytes bounds every JSON request body (image loads stream and are not bounded).
const maxBodyBytes = 4 << 20

// Config is what the API server needs.
type Config struct {
	Swarm Swarm
	// Secrets is the swarm's secrets and configs; nil answers as a node
	// outside a swarm.
	Secrets Secrets
	// Networks is the swarm's overlay networks; nil lists only the node's
	// predefined ones.
	Networks   Networks
	Containers Containers
	Images     Images
	// Volumes is the node's local volumes; nil answers /volumes with an empty list.
	Volumes Volumes
	// Bridge is the node's bridge network; nil lists only the host and none networks.
	Bridge Bridge
	// Registry is the registry configuration `docker info` shows (mirrors,
	// insecure registries), asked at each call since SIGHUP may change it;
	// nil shows none.
	Registry func() *registry.ServiceConfig
	// Version is shoal's own version, shown by `docker version`.
	Version string
	// DataRoot is shown by `docker info` as Docker Root Dir.
	DataRoot string
	// Labels are the daemon's --label values, shown by `docker info`;
	// SetLabels replaces them.
	Labels map[string]string
	// MinCertExpiry is the shortest node certificate lifetime `swarm init` and
	// `swarm update` accept; zero means Docker's hour (cluster.MinCertExpiry).
	MinCertExpiry time.Duration
	// Requests is told of each request as it ends; nil is told nothing.
	Requests RequestObserver
	Logger   *slog.Logger
}

// Server is the Engine API as an http.Handler.
type Server struct {
	cfg    Config
	log    *slog.Logger
	router *gin.Engine
	events *eventHub
	execs  *execTable
	labels atomic.Pointer[map[string]string]
}

var versionPrefix = regexp.MustCompile(`^/v(\d+\.\d+)(/|$)`)

// New builds the API server. Its event hub starts following Swarm and Containers
// events at once, so `docker events --since` can replay them; Close stops it.
func New(cfg Config) *Server {
	gin.SetMode(gin.ReleaseMode)
	s := &Server{cfg: cfg, log: cfg.Logger, router: gin.New()}
	s.labels.Store(&cfg.Labels)
	if s.log == nil {
		s.log = slog.Default()
	}
	s.router.Use(gin.CustomRecoveryWithWriter(nil, func(c *gin.Context, rec any) {
		s.log.Error("panic serving API request", "method", c.Request.Method, "path", c.Request.URL.Path, "panic", rec)
		c.AbortWithStatusJSON(http.StatusInternalServerError, gin.H{"message": "internal error"})
	}))
	if cfg.Requests != nil {
		s.router.Use(observeRequests(cfg.Requests))
	}
	s.router.NoRoute(noRoute)
	s.router.HandleMethodNotAllowed = false
	s.events = newEventHub(cfg.Swarm, cfg.Containers, s.log)
	s.execs = newExecTable()
	s.registerSystemRoutes(s.router)
	s.registerSwarmRoutes(s.router)
	s.registerNodeRoutes(s.router)
	s.registerServiceRoutes(s.router)
	s.registerSecretRoutes(s.router)
	s.registerTaskRoutes(s.router)
	s.registerContainerRoutes(s.router)
	s.registerImageRoutes(s.router)
	s.registerVolumeRoutes(s.router)
	s.registerPauseAndPruneRoutes(s.router)
	s.registerNetworkRoutes(s.router)
	return s
}

// ServeHTTP strips the /v1.NN prefix, refuses versions below MinAPIVersion, bounds
// the body, and routes the request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if m := versionPrefix.FindStringSubmatch(r.URL.Path); m != nil {
		// dockerd's words and status for versions it does not speak.
		if versionLess(m[1], MinAPIVersion) {
			refuseVersion(w, "client version "+m[1]+" is too old. Minimum supported API version is "+MinAPIVersion+", please upgrade your client to a newer version")
			return
		}
		if versionLess(APIVersion, m[1]) {
			refuseVersion(w, "client version "+m[1]+" is too new. Maximum supported API version is "+APIVersion)
			return
		}
		r.URL.Path = "/" + strings.TrimPrefix(r.URL.Path[len(m[0]):], "/")
		r.URL.RawPath = ""
		r.Header.Set("X-Shoal-Api-Version", m[1])
	}
	if r.Body != nil && !isStreamingUpload(r) {
		r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
	}
	w.Header().Set("Api-Version", APIVersion)
	w.Header().Set("Server", "Docker/"+s.cfg.Version+" (linux)")
	s.router.ServeHTTP(w, r)
}

// refuseVersion answers 400 with msg, before any route runs.
func refuseVersion(w http.ResponseWriter, msg string) {
	w.Header().Set("Api-Version", APIVersion)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusBadRequest)
	_ = json.NewEncoder(w).Encode(map[string]string{"message": msg})
}

// Close stops the server's background work.
func (s *Server) Close() { s.events.close() }

// isStreamingUpload reports whether the request body is an archive, not JSON.
func isStreamingUpload(r *http.Request) bool {
	return (r.Method == http.MethodPost && (r.URL.Path == "/images/load" || r.URL.Path == "/build")) ||
		(r.Method == http.MethodPut && archiveRoute.MatchString(r.URL.Path))
}

// versionLess compares two "major.minor" API versions.
func versionLess(a, b string) bool {
	am, an := splitVersion(a)
	bm, bn := splitVersion(b)
	return am < bm || (am == bm && an < bn)
}

func splitVersion(v string) (int, int) {
	major, minor, _ := strings.Cut(v, ".")
	return atoiOr(major, 0), atoiOr(minor, 0)
}

func atoiOr(s string, def int) int {
	n := 0
	if s == "" {
		return def
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return def
		}
		n = n*10 + int(r-'0')
	}
	return n
}

// requestVersion is the API version the client asked for (the URL prefix), or APIVersion.
func requestVersion(c *gin.Context) string {
	if v := c.GetHeader("X-Shoal-Api-Version"); v != "" {
		return v
	}
	return APIVersion
}
