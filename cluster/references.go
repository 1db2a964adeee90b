package cluster

import (
	"cmp"
	"path"
	"slices"
	"strings"

	"github.com/moby/moby/api/types/swarm"

	"github.com/shoal-project/shoal/cluster/store"
)

// defaultFileMode is what a secret or config file gets when the reference names
// no file (the docker CLI always does, with these values).
const defaultFileMode = 0o444

// resolveReferences checks a service's secret and config references against the
// store, as swarmkit does at create and update, and completes them: an ID
// found from the name when only the name is given (the docker CLI sends both),
// and the file target the CLI fills (target = name, uid and gid "0", mode
// 0444) when the reference has none. It changes spec's container spec in place
// (a copy of the references).
func resolveReferences(tx store.ReadTx, spec *swarm.ServiceSpec) error {
	cs := spec.TaskTemplate.ContainerSpec
	if cs == nil || (len(cs.Secrets) == 0 && len(cs.Configs) == 0) {
		return nil
	}
	c := *cs
	spec.TaskTemplate.ContainerSpec = &c
	var missing []string
	targets := map[string]string{}
	c.Secrets = make([]*swarm.SecretReference, 0, len(cs.Secrets))
	for _, in := range cs.Secrets {
		if in == nil {
			return errInvalidf("rpc error: code = InvalidArgument desc = malformed secret reference")
		}
		r := *in
		if r.SecretID == "" && r.SecretName == "" {
			return errInvalidf("rpc error: code = InvalidArgument desc = malformed secret reference")
		}
		if s, ok := lookupReference(tx, secrets, r.SecretID, r.SecretName); ok {
			r.SecretID, r.SecretName = s.ID, s.Spec.Name
		} else {
			missing = append(missing, cmp.Or(r.SecretName, r.SecretID))
		}
		r.File = fileTarget(r.File, r.SecretName)
		if err := checkTarget("secret", r.SecretName, r.File.Name, targets); err != nil {
			return err
		}
		c.Secrets = append(c.Secrets, &r)
	}
	if err := errMissing("secret", missing); err != nil {
		return err
	}
	targets = map[string]string{}
	c.Configs = make([]*swarm.ConfigReference, 0, len(cs.Configs))
	for _, in := range cs.Configs {
		if in == nil || (in.ConfigID == "" && in.ConfigName == "") {
			return errInvalidf("rpc error: code = InvalidArgument desc = malformed config reference")
		}
		r := *in
		if r.Runtime != nil {
			return errInvalidf("rpc error: code = InvalidArgument desc = config %s: runtime targets (credential specs) are for Windows nodes; shoal delivers configs as files only", cmp.Or(r.ConfigName, r.ConfigID))
		}
		if cfg, ok := lookupReference(tx, configs, r.ConfigID, r.ConfigName); ok {
			r.ConfigID, r.ConfigName = cfg.ID, cfg.Spec.Name
		} else {
			missing = append(missing, cmp.Or(r.ConfigName, r.ConfigID))
		}
		f := fileTarget((*swarm.SecretReferenceFileTarget)(r.File), r.ConfigName)
		r.File = (*swarm.ConfigReferenceFileTarget)(f)
		if err := checkTarget("config", r.ConfigName, r.File.Name, targets); err != nil {
			return err
		}
		c.Configs = append(c.Configs, &r)
	}
	return errMissing("config", missing)
}

// fileTarget is a reference's file target with the CLI's defaults filled in.
func fileTarget(in *swarm.SecretReferenceFileTarget, name string) *swarm.SecretReferenceFileTarget {
	if in == nil {
		return &swarm.SecretReferenceFileTarget{Name: name, UID: "0", GID: "0", Mode: defaultFileMode}
	}
	f := *in
	if f.Name == "" {
		f.Name = name
	}
	if f.UID == "" {
		f.UID = "0"
	}
	if f.GID == "" {
		f.GID = "0"
	}
	return &f
}

// checkTarget refuses two references of one kind to one file, and targets that
// would leave the container's root, in swarmkit's words where it has them.
func checkTarget(kind, name, target string, seen map[string]string) error {
	if strings.Contains("/"+target+"/", "/../") || strings.ContainsRune(target, 0) {
		return errInvalidf("rpc error: code = InvalidArgument desc = malformed file %s reference, invalid target file name provided: %q", kind, target)
	}
	if prev, ok := seen[path.Clean(target)]; ok {
		return errInvalidf("rpc error: code = InvalidArgument desc = %s references '%s' and '%s' have a conflicting target: '%s'", kind, prev, name, target)
	}
	seen[path.Clean(target)] = name
	return nil
}

// lookupReference finds the object a reference means: by ID when it has one
// (and then its name must match, as swarmkit checks), else by name.
func lookupReference[T any](tx store.ReadTx, p payload[T], id, name string) (*T, bool) {
	if id != "" {
		o, err := p.one(tx, id)
		if err != nil || internal(id) || (name != "" && p.name(o) != name) {
			return nil, false
		}
		return o, true
	}
	o, err := p.byName(tx, name)
	if err != nil || p.name(o) != name || internal(p.id(o)) {
		return nil, false
	}
	return o, true
}

// errMissing is swarmkit's answer to references to objects that do not exist.
func errMissing(kind string, missing []string) error {
	switch len(missing) {
	case 0:
		return nil
	case 1:
		return errInvalidf("rpc error: code = InvalidArgument desc = %s not found: %s", kind, missing[0])
	}
	return errInvalidf("rpc error: code = InvalidArgument desc = %ss not found: %s", kind, strings.Join(slices.Compact(missing), ", "))
}
