package image

// Where a pull fetched its image from, as Metrics.Pulled is told.
const (
	SourceRegistry = "registry"
	SourcePeer     = "peer"
)

// Metrics is told of the store's transfers, as they end.
type Metrics interface {
	// Pulled is told of each pull, from a registry or a peer node (source),
	// and its error (nil: the image is stored).
	Pulled(source string, err error)
	// LayerServed is told of each layer sent to a peer node: its size and
	// whether it went whole (err nil) or was cut short.
	LayerServed(bytes int64, err error)
}

func (s *Store) observePull(source string, err error) {
	if s.metrics != nil {
		s.metrics.Pulled(source, err)
	}
}
