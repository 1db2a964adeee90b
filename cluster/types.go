package cluster

import "time"

// UpdateFlags are the one-shot actions of a swarm update (POST /swarm/update).
type UpdateFlags struct {
	RotateWorkerToken      bool
	RotateManagerToken     bool
	RotateManagerUnlockKey bool
}

// ServiceUpdateOptions are the query options of POST /services/{id}/update.
type ServiceUpdateOptions struct {
	// EncodedRegistryAuth is the X-Registry-Auth header, passed to workers for pulls.
	EncodedRegistryAuth string
	// RegistryAuthFrom is "spec" or "previous-spec".
	RegistryAuthFrom string
	// Rollback is "previous" when the client asks for a server-side rollback.
	Rollback string
}

// LogOptions select the log records of a service or task.
type LogOptions struct {
	Follow     bool
	Since      time.Time
	Until      time.Time
	Tail       int // -1 for all
	Stdout     bool
	Stderr     bool
	Timestamps bool
}

// LogMessage is one line of a task's output with the context the docker CLI needs to
// print it (`docker service logs` refuses lines without these IDs).
type LogMessage struct {
	Stream    string // "stdout" or "stderr"
	Time      time.Time
	Line      []byte // with its trailing newline
	NodeID    string
	ServiceID string
	TaskID    string
	// Attrs are the attributes the task's log driver options ask for
	// (`--log-opt env=`, `labels=`, ...), which `logs --details` prints.
	Attrs map[string]string
}
