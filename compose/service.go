package compose

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/swarm"
)

// serviceSpec converts one service. Its name, labels and references to the
// stack's networks, volumes, secrets and configs carry the stack's prefix.
func serviceSpec(p *types.Project, svc types.ServiceConfig) (swarm.ServiceSpec, []Warning, error) {
	var warnings []Warning
	cs := &swarm.ContainerSpec{
		Image:           svc.Image,
		Labels:          withNamespace(p.Name, svc.Labels),
		Command:         svc.Entrypoint,
		Args:            svc.Command,
		Hostname:        svc.Hostname,
		Env:             environment(svc.Environment),
		Dir:             svc.WorkingDir,
		User:            svc.User,
		Groups:          svc.GroupAdd,
		Init:            svc.Init,
		StopSignal:      svc.StopSignal,
		TTY:             svc.Tty,
		OpenStdin:       svc.StdinOpen,
		ReadOnly:        svc.ReadOnly,
		StopGracePeriod: (*time.Duration)(svc.StopGracePeriod),
		Healthcheck:     healthcheck(svc.HealthCheck),
		Hosts:           hosts(svc.ExtraHosts),
		Sysctls:         svc.Sysctls,
		CapabilityAdd:   svc.CapAdd,
		CapabilityDrop:  svc.CapDrop,
		Ulimits:         ulimits(svc.Ulimits),
	}
	if len(svc.DNS) > 0 || len(svc.DNSSearch) > 0 || len(svc.DNSOpts) > 0 {
		dns := &swarm.DNSConfig{Search: svc.DNSSearch, Options: svc.DNSOpts}
		for _, s := range svc.DNS {
			a, err := netip.ParseAddr(s)
			if err != nil {
				return swarm.ServiceSpec{}, nil, fmt.Errorf("dns: %w", err)
			}
			dns.Nameservers = append(dns.Nameservers, a)
		}
		cs.DNSConfig = dns
	}
	var err error
	if cs.Mounts, err = mounts(p, svc); err != nil {
		return swarm.ServiceSpec{}, nil, err
	}
	if cs.Secrets, err = secretRefs(p, svc.Secrets); err != nil {
		return swarm.ServiceSpec{}, nil, err
	}
	if cs.Configs, err = configRefs(p, svc.Configs); err != nil {
		return swarm.ServiceSpec{}, nil, err
	}

	spec := swarm.ServiceSpec{
		Annotations:  swarm.Annotations{Name: p.Name + "_" + svc.Name, Labels: withNamespace(p.Name, map[string]string{ImageLabel: svc.Image})},
		TaskTemplate: swarm.TaskSpec{ContainerSpec: cs, Networks: attachments(p, svc)},
	}
	if err := applyDeploy(&spec, svc); err != nil {
		return swarm.ServiceSpec{}, nil, err
	}
	if spec.EndpointSpec, err = endpoint(svc); err != nil {
		return swarm.ServiceSpec{}, nil, err
	}
	return spec, warnings, nil
}

// environment is the resolved environment as KEY=value, sorted; a variable
// named without a value and not set anywhere is left out.
func environment(env types.MappingWithEquals) []string {
	var out []string
	for k, v := range env {
		if v != nil {
			out = append(out, k+"="+*v)
		}
	}
	sort.Strings(out)
	return out
}

func healthcheck(h *types.HealthCheckConfig) *container.HealthConfig {
	if h == nil {
		return nil
	}
	if h.Disable {
		return &container.HealthConfig{Test: []string{"NONE"}}
	}
	hc := &container.HealthConfig{Test: h.Test}
	if h.Interval != nil {
		hc.Interval = time.Duration(*h.Interval)
	}
	if h.Timeout != nil {
		hc.Timeout = time.Duration(*h.Timeout)
	}
	if h.StartPeriod != nil {
		hc.StartPeriod = time.Duration(*h.StartPeriod)
	}
	if h.StartInterval != nil {
		hc.StartInterval = time.Duration(*h.StartInterval)
	}
	if h.Retries != nil {
		hc.Retries = int(*h.Retries)
	}
	return hc
}

// hosts is extra_hosts in the "IP host" form of /etc/hosts that swarm takes.
func hosts(h types.HostsList) []string {
	var out []string
	for _, name := range sortedKeys(h) {
		for _, ip := range h[name] {
			out = append(out, ip+" "+name)
		}
	}
	return out
}

func ulimits(u map[string]*types.UlimitsConfig) []*container.Ulimit {
	var out []*container.Ulimit
	for _, name := range sortedKeys(u) {
		l := u[name]
		if l == nil {
			continue
		}
		soft, hard := l.Soft, l.Hard
		if l.Single != 0 {
			soft, hard = l.Single, l.Single
		}
		out = append(out, &container.Ulimit{Name: name, Soft: int64(soft), Hard: int64(hard)})
	}
	return out
}

// attachments attaches the service to its networks with its short name as an
// alias, so the stack's services find each other by the names in the file.
func attachments(p *types.Project, svc types.ServiceConfig) []swarm.NetworkAttachmentConfig {
	var out []swarm.NetworkAttachmentConfig
	for _, key := range sortedKeys(svc.Networks) {
		aliases := []string{svc.Name}
		if n := svc.Networks[key]; n != nil {
			for _, a := range n.Aliases {
				if a != svc.Name {
					aliases = append(aliases, a)
				}
			}
		}
		target := key
		if n, ok := p.Networks[key]; ok && n.Name != "" {
			target = n.Name
		}
		out = append(out, swarm.NetworkAttachmentConfig{Target: target, Aliases: aliases})
	}
	return out
}

// fileTarget fills a secret's or config's defaults: the target is the
// source's key, owned by root and world-readable.
func fileTarget(ref types.FileReferenceConfig) (name, uid, gid string, mode uint32) {
	name, uid, gid, mode = ref.Target, ref.UID, ref.GID, 0o444
	if name == "" {
		name = ref.Source
	}
	if uid == "" {
		uid = "0"
	}
	if gid == "" {
		gid = "0"
	}
	if ref.Mode != nil {
		mode = uint32(*ref.Mode)
	}
	return name, uid, gid, mode
}

func secretRefs(p *types.Project, refs []types.ServiceSecretConfig) ([]*swarm.SecretReference, error) {
	var out []*swarm.SecretReference
	for _, ref := range refs {
		s, ok := p.Secrets[ref.Source]
		if !ok {
			return nil, fmt.Errorf("secret %s is not defined", ref.Source)
		}
		name, uid, gid, mode := fileTarget(types.FileReferenceConfig(ref))
		out = append(out, &swarm.SecretReference{
			SecretName: s.Name,
			File:       &swarm.SecretReferenceFileTarget{Name: name, UID: uid, GID: gid, Mode: fileMode(mode)},
		})
	}
	return out, nil
}

func configRefs(p *types.Project, refs []types.ServiceConfigObjConfig) ([]*swarm.ConfigReference, error) {
	var out []*swarm.ConfigReference
	for _, ref := range refs {
		c, ok := p.Configs[ref.Source]
		if !ok {
			return nil, fmt.Errorf("config %s is not defined", ref.Source)
		}
		name, uid, gid, mode := fileTarget(types.FileReferenceConfig(ref))
		out = append(out, &swarm.ConfigReference{
			ConfigName: c.Name,
			File:       &swarm.ConfigReferenceFileTarget{Name: name, UID: uid, GID: gid, Mode: fileMode(mode)},
		})
	}
	return out, nil
}

// restartCondition maps the service-level `restart:` onto swarm's policy.
func restartCondition(restart string) (*swarm.RestartPolicy, error) {
	name, attempts, _ := strings.Cut(restart, ":")
	switch name {
	case "":
		return nil, nil
	case "no":
		return &swarm.RestartPolicy{Condition: swarm.RestartPolicyConditionNone}, nil
	case "always", "unless-stopped":
		return &swarm.RestartPolicy{Condition: swarm.RestartPolicyConditionAny}, nil
	case "on-failure":
		rp := &swarm.RestartPolicy{Condition: swarm.RestartPolicyConditionOnFailure}
		if attempts != "" {
			var n uint64
			if _, err := fmt.Sscanf(attempts, "%d", &n); err != nil {
				return nil, fmt.Errorf("restart %q: %w", restart, err)
			}
			rp.MaxAttempts = &n
		}
		return rp, nil
	}
	return nil, fmt.Errorf("restart %q: unknown policy", restart)
}
