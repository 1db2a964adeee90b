package image

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
)

// PeerHandler serves this node's images to the other nodes of the cluster, as a
// read-only registry (a subset of the OCI distribution API) that PullFromPeer
// fetches from. Mount it at "/v2/" of a server that has authenticated the peer;
// it does no authentication of its own.
//
//	GET /v2/                                    200, the API version check
//	GET|HEAD /v2/<repository>/manifests/<ref>   a generated Docker schema2 manifest
//	GET|HEAD /v2/<repository>/blobs/<digest>    an image config or layer tar
//
// <repository> is the fully qualified repository of the image reference, domain
// included ("docker.io/library/busybox"; a registry port is written with "_":
// "localhost_5000/app"). <ref> is a tag, the digest a registry pull recorded, the
// image ID, or the digest of the generated manifest. The manifest lists the stored
// config (its digest is the image ID) and the uncompressed layers (their digests
// are the diff IDs), which are rebuilt from the unpacked layers and streamed.
// Images with a layer that cannot be rebuilt (unpacked by an earlier version) are
// not offered. Errors are registry-style JSON.
func (s *Store) PeerHandler() http.Handler {
	return peerHandler{s: s}
}

// peerHandler is the http.Handler PeerHandler returns.
type peerHandler struct{ s *Store }

func (h peerHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeRegistryError(w, http.StatusMethodNotAllowed, transport.UnsupportedErrorCode, "the peer image protocol is read-only")
		return
	}
	req, err := parsePeerPath(r.URL.Path)
	if err != nil {
		var pe peerPathError
		if errors.As(err, &pe) {
			writeRegistryError(w, pe.status, pe.code, pe.msg)
			return
		}
		writeRegistryError(w, http.StatusBadRequest, transport.UnknownErrorCode, err.Error())
		return
	}
	switch req.kind {
	case peerPing:
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", "2")
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			io.WriteString(w, "{}")
		}
	case peerManifest:
		h.serveManifest(w, r, req)
	case peerBlob:
		h.serveBlob(w, r, req)
	}
}

// serveManifest answers a manifest request.
func (h peerHandler) serveManifest(w http.ResponseWriter, r *http.Request, req peerRequest) {
	img, ok, err := h.s.findPeerManifest(req)
	if err != nil {
		h.internalError(w, r, err)
		return
	}
	if !ok {
		writeRegistryError(w, http.StatusNotFound, transport.ManifestUnknownErrorCode,
			fmt.Sprintf("no image %s here that can be served", req.reference()))
		return
	}
	m, err := img.manifest()
	if err != nil {
		h.internalError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", string(types.DockerManifestSchema2))
	w.Header().Set("Content-Length", strconv.Itoa(len(m)))
	w.Header().Set("Docker-Content-Digest", digest.FromBytes(m).String())
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		w.Write(m)
	}
}

// serveBlob answers a blob request: a config from memory, a layer rebuilt on the
// fly and checked as it goes (see writeLayerTar). When the check fails at the end,
// the last byte is withheld and the response aborted, so the peer sees a
// truncated body, never a complete wrong one.
func (h peerHandler) serveBlob(w http.ResponseWriter, r *http.Request, req peerRequest) {
	blob, ok, err := h.s.findPeerBlob(req.digest)
	if err != nil {
		h.internalError(w, r, err)
		return
	}
	if !ok {
		writeRegistryError(w, http.StatusNotFound, transport.BlobUnknownErrorCode,
			fmt.Sprintf("no blob %s here that can be served", req.digest))
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(blob.size, 10))
	w.Header().Set("Docker-Content-Digest", req.digest.String())
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodGet {
		return
	}
	if blob.config != nil {
		w.Write(blob.config)
		return
	}
	out := newHoldbackWriter(w)
	_, err = h.s.writeLayerTar(r.Context(), req.digest.String(), out)
	if err == nil {
		err = out.release()
	}
	if h.s.metrics != nil {
		h.s.metrics.LayerServed(blob.size, err)
	}
	if err != nil {
		if r.Context().Err() != nil {
			h.s.log.Debug("peer went away while a layer was served", "layer", req.digest.String(), "err", err)
		} else {
			h.s.log.Error("serve layer to peer", "layer", req.digest.String(), "peer", r.RemoteAddr, "err", err)
		}
		// The documented way to end a response mid-body: the connection (HTTP/1)
		// or stream (HTTP/2) is reset, which the peer sees as a failed read.
		panic(http.ErrAbortHandler)
	}
}

// internalError answers a request the store failed to look up.
func (h peerHandler) internalError(w http.ResponseWriter, r *http.Request, err error) {
	h.s.log.Error("peer image request", "path", r.URL.Path, "err", err)
	writeRegistryError(w, http.StatusInternalServerError, transport.UnknownErrorCode, err.Error())
}

// writeRegistryError answers with a registry-style JSON error.
func writeRegistryError(w http.ResponseWriter, status int, code transport.ErrorCode, msg string) {
	body, _ := json.Marshal(transport.Error{Errors: []transport.Diagnostic{{Code: code, Message: msg}}})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	w.Write(body)
}

// holdbackWriter passes on what is written to it in large writes, except the last
// byte, which only release sends. A response whose content proves wrong at its
// end can then still be cut short of its Content-Length.
type holdbackWriter struct {
	w   io.Writer
	buf []byte
}

func newHoldbackWriter(w io.Writer) *holdbackWriter {
	return &holdbackWriter{w: w, buf: make([]byte, 0, 64<<10)}
}

func (h *holdbackWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		if len(h.buf) == cap(h.buf) {
			if _, err := h.w.Write(h.buf[:len(h.buf)-1]); err != nil {
				return 0, err
			}
			h.buf[0] = h.buf[len(h.buf)-1]
			h.buf = h.buf[:1]
		}
		k := min(cap(h.buf)-len(h.buf), len(p))
		h.buf = append(h.buf, p[:k]...)
		p = p[k:]
	}
	return n, nil
}

// release sends what is held back.
func (h *holdbackWriter) release() error {
	_, err := h.w.Write(h.buf)
	h.buf = h.buf[:0]
	return err
}
