package engineapi

import (
	"context"
	"io"
	"syscall"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/api/types/volume"

	"github.com/shoal-project/shoal/cluster"
	"github.com/shoal-project/shoal/netplane/bridge"
	ctr "github.com/shoal-project/shoal/runtime/container"
	img "github.com/shoal-project/shoal/runtime/image"
	vol "github.com/shoal-project/shoal/runtime/volume"
)

// Swarm is the control plane as the Engine API sees it. cluster.Cluster implements it.
// Errors are classified by their NotFound/Conflict/InvalidParameter/Unavailable methods.
type Swarm interface {
	// Info is the Swarm section of /info, and decides the Swarm header of /_ping.
	Info(ctx context.Context) swarm.Info
	Init(ctx context.Context, req swarm.InitRequest) (nodeID string, err error)
	Join(ctx context.Context, req swarm.JoinRequest) error
	Leave(ctx context.Context, force bool) error
	Inspect(ctx context.Context) (swarm.Swarm, error)
	Update(ctx context.Context, version uint64, spec swarm.Spec, flags cluster.UpdateFlags) error
	// UnlockKey is the swarm's unlock key, "" without autolock.
	UnlockKey(ctx context.Context) (string, error)
	// Unlock opens a locked manager with the swarm's unlock key.
	Unlock(ctx context.Context, key string) error

	Nodes(ctx context.Context) ([]swarm.Node, error)
	Node(ctx context.Context, idOrName string) (swarm.Node, error)
	UpdateNode(ctx context.Context, idOrName string, version uint64, spec swarm.NodeSpec) error
	RemoveNode(ctx context.Context, idOrName string, force bool) error

	CreateService(ctx context.Context, spec swarm.ServiceSpec, encodedAuth string) (swarm.ServiceCreateResponse, error)
	Services(ctx context.Context, withStatus bool) ([]swarm.Service, error)
	Service(ctx context.Context, idOrName string, insertDefaults bool) (swarm.Service, error)
	UpdateService(ctx context.Context, idOrName string, version uint64, spec swarm.ServiceSpec, opts cluster.ServiceUpdateOptions) (swarm.ServiceUpdateResponse, error)
	RemoveService(ctx context.Context, idOrName string) error

	Tasks(ctx context.Context) ([]swarm.Task, error)
	Task(ctx context.Context, id string) (swarm.Task, error)
	// ServiceLogs streams the output of the service's tasks; the channel closes at the end.
	ServiceLogs(ctx context.Context, idOrName string, opts cluster.LogOptions) (<-chan cluster.LogMessage, error)
	// TaskLogs is ServiceLogs for one task.
	TaskLogs(ctx context.Context, taskID string, opts cluster.LogOptions) (<-chan cluster.LogMessage, error)

	// Events streams swarm object events (service, node, secret, config, network)
	// until ctx is done.
	Events(ctx context.Context) <-chan events.Message
}

// Secrets is the swarm's secrets and configs as the API sees them. cluster.Cluster
// implements it. Secrets come back without their data; configs with theirs.
type Secrets interface {
	CreateSecret(ctx context.Context, spec swarm.SecretSpec) (id string, err error)
	Secrets(ctx context.Context) ([]swarm.Secret, error)
	Secret(ctx context.Context, idOrName string) (swarm.Secret, error)
	// UpdateSecret changes only the labels; anything else is refused.
	UpdateSecret(ctx context.Context, idOrName string, version uint64, spec swarm.SecretSpec) error
	// RemoveSecret refuses a secret a service uses.
	RemoveSecret(ctx context.Context, idOrName string) error

	CreateConfig(ctx context.Context, spec swarm.ConfigSpec) (id string, err error)
	Configs(ctx context.Context) ([]swarm.Config, error)
	Config(ctx context.Context, idOrName string) (swarm.Config, error)
	UpdateConfig(ctx context.Context, idOrName string, version uint64, spec swarm.ConfigSpec) error
	RemoveConfig(ctx context.Context, idOrName string) error
}

// Networks is the swarm's overlay networks as the API sees them.
// cluster.Cluster implements it.
type Networks interface {
	CreateNetwork(ctx context.Context, req cluster.NetworkRequest) (id string, err error)
	Networks(ctx context.Context) ([]swarm.Network, error)
	Network(ctx context.Context, idOrName string) (swarm.Network, error)
	// RemoveNetwork refuses a network a service or a live task uses.
	RemoveNetwork(ctx context.Context, idOrName string) error
	// PruneNetworks removes the unused networks keep does not keep.
	PruneNetworks(ctx context.Context, keep func(swarm.Network) bool) ([]string, error)
}

// Containers is the node's container runtime as the API sees it (read and debug only:
// containers are created by the orchestrator). *container.Manager implements it.
type Containers interface {
	List(ctx context.Context, all bool) ([]container.Summary, error)
	Inspect(ctx context.Context, idOrName string) (container.InspectResponse, error)
	Logs(ctx context.Context, idOrName string, opts ctr.LogOptions) (<-chan ctr.LogEntry, error)
	Exec(ctx context.Context, idOrName string, cfg ctr.ExecConfig, stdin io.Reader, stdout, stderr io.Writer) (int, error)
	Stop(ctx context.Context, idOrName string, timeout *time.Duration) error
	Kill(ctx context.Context, idOrName string, sig syscall.Signal) error
	Subscribe(ctx context.Context) <-chan ctr.Event
	// Top lists the container's processes as the host's ps shows them with psArgs
	// ("" means "-ef"); Conflict when the container is not running.
	Top(ctx context.Context, idOrName, psArgs string) (container.TopResponse, error)
	// Size is the bytes the container wrote (rw) and those plus its image's
	// (rootFs), for `docker inspect -s` and `docker system df`.
	Size(ctx context.Context, idOrName string) (rw, rootFs int64, err error)
	// Stats takes one sample of the container's resource usage, without the
	// previous-sample fields; Conflict when the container is not running.
	Stats(ctx context.Context, idOrName string) (container.StatsResponse, error)
	// Pause freezes a running container (docker pause); Unpause thaws it.
	// Conflict when it is not running, already paused, or not paused.
	Pause(ctx context.Context, idOrName string) error
	Unpause(ctx context.Context, idOrName string) error
	// Prune removes the containers that are not running and that opts selects.
	Prune(ctx context.Context, opts ctr.PruneOptions) (container.PruneReport, error)
	// StatPath describes a path in the container as docker cp sees it (a final
	// symlink is not followed); NotFound when the container lacks it.
	StatPath(ctx context.Context, idOrName, path string) (container.PathStat, error)
	// ArchivePath is a tar archive of a path in the container and its
	// description; the caller closes the archive.
	ArchivePath(ctx context.Context, idOrName, path string) (io.ReadCloser, container.PathStat, error)
	// ExtractToDir unpacks a tar archive into a directory of the container.
	ExtractToDir(ctx context.Context, idOrName, dir string, content io.Reader, opts ctr.ExtractOptions) error
}

// Images is the node's image store as the API sees it. *image.Store implements it.
type Images interface {
	Load(ctx context.Context, r io.Reader) ([]string, error)
	Pull(ctx context.Context, ref string, auth *registry.AuthConfig, progress func(jsonstream.Message)) (img.Image, error)
	Get(ctx context.Context, ref string) (img.Image, error)
	List(ctx context.Context) ([]img.Image, error)
	Tag(ctx context.Context, ref, newRef string) error
	Remove(ctx context.Context, ref string, force bool) ([]image.DeleteResponse, error)
	Distribution(ctx context.Context, ref string, auth *registry.AuthConfig) (registry.DistributionInspect, error)
	// Login checks credentials against their registry (`docker login`).
	Login(ctx context.Context, auth *registry.AuthConfig) error
	// Prune removes the unused images opts selects and the layers they alone used.
	Prune(ctx context.Context, opts img.PruneOptions) (image.PruneReport, error)
}

// Volumes is the node's local volume store as the API sees it. *volume.Store
// implements it.
type Volumes interface {
	Create(ctx context.Context, name string, labels, driverOpts map[string]string) (vol.Volume, error)
	Get(ctx context.Context, name string) (vol.Volume, error)
	List(ctx context.Context) ([]vol.Volume, error)
	Remove(ctx context.Context, name string, force bool) error
	Prune(ctx context.Context, opts vol.PruneOptions) (volume.PruneReport, error)
	// Size is the bytes the volume's files take, for `docker system df`.
	Size(ctx context.Context, name string) (int64, error)
}

// Bridge is the node-local bridge network every task container is attached to, as
// the API shows it (`docker network inspect bridge`). *bridge.Network implements it.
type Bridge interface {
	// Info names the bridge device and its subnet and gateway.
	Info() bridge.Info
}
