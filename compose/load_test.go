package compose

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"
)

func load(t *testing.T, opts Options) *Stack {
	t.Helper()
	if opts.ProjectName == "" {
		opts.ProjectName = "shop"
	}
	st, err := Load(context.Background(), opts)
	if err != nil {
		t.Fatalf("load %v: %v", opts.Files, err)
	}
	return st
}

func service(t *testing.T, st *Stack, name string) Service {
	t.Helper()
	for _, s := range st.Services {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no service %s in %v", name, st.Services)
	return Service{}
}

func basic(t *testing.T) *Stack {
	return load(t, Options{Files: []string{"testdata/basic.yaml"}, Env: map[string]string{"SITE_CONF": "conf"}})
}

func TestServiceContainer(t *testing.T) {
	cs := service(t, basic(t), "web").Spec.TaskTemplate.ContainerSpec
	grace := 20 * time.Second
	tests := []struct {
		name      string
		got, want any
	}{
		{"image interpolated with default", cs.Image, "nginx:1.27"},
		{"entrypoint is Command", cs.Command, []string{"/docker-entrypoint.sh"}},
		{"command is Args", cs.Args, []string{"nginx", "-g", "daemon off;"}},
		{"env with env_file", cs.Env, []string{"GREETING=hello", "MODE=prod"}},
		{"user", cs.User, "101"},
		{"working_dir", cs.Dir, "/srv"},
		{"hostname", cs.Hostname, "web1"},
		{"stop_signal", cs.StopSignal, "SIGQUIT"},
		{"stop_grace_period", *cs.StopGracePeriod, grace},
		{"healthcheck test", cs.Healthcheck.Test, []string{"CMD", "true"}},
		{"healthcheck interval", cs.Healthcheck.Interval, 5 * time.Second},
		{"healthcheck retries", cs.Healthcheck.Retries, 3},
		{"namespace label", cs.Labels[NamespaceLabel], "shop"},
		{"volume prefixed", cs.Mounts[0].Source, "shop_data"},
		{"volume labelled", cs.Mounts[0].VolumeOptions.Labels[NamespaceLabel], "shop"},
		{"tmpfs", string(cs.Mounts[1].Type) + " " + cs.Mounts[1].Target, "tmpfs /cache"},
		{"secret prefixed", cs.Secrets[0].SecretName, "shop_token"},
		{"secret target", cs.Secrets[0].File.Name, "/run/secrets/token"},
		{"config prefixed", cs.Configs[0].ConfigName, "shop_site"},
		{"config target", cs.Configs[0].File.Name, "/etc/nginx/site.conf"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !equal(tt.got, tt.want) {
				t.Errorf("got %#v, want %#v", tt.got, tt.want)
			}
		})
	}
}

func TestServiceDeploy(t *testing.T) {
	st := basic(t)
	web := service(t, st, "web").Spec
	tt := web.TaskTemplate
	tests := []struct {
		name      string
		got, want any
	}{
		{"name prefixed", web.Name, "shop_web"},
		{"deploy labels", web.Labels["tier"], "front"},
		{"namespace", web.Labels[NamespaceLabel], "shop"},
		{"image as the file names it", web.Labels[ImageLabel], "nginx:1.27"},
		{"replicas", *web.Mode.Replicated.Replicas, uint64(3)},
		{"global", service(t, st, "db").Spec.Mode.Global != nil, true},
		{"default replicas", *service(t, st, "agent").Spec.Mode.Replicated.Replicas, uint64(1)},
		{"cpu limit", tt.Resources.Limits.NanoCPUs, int64(500000000)},
		{"memory limit", tt.Resources.Limits.MemoryBytes, int64(64 << 20)},
		{"memory reservation", tt.Resources.Reservations.MemoryBytes, int64(32 << 20)},
		{"restart condition", tt.RestartPolicy.Condition, swarm.RestartPolicyConditionOnFailure},
		{"restart attempts", *tt.RestartPolicy.MaxAttempts, uint64(2)},
		{"update parallelism", web.UpdateConfig.Parallelism, uint64(2)},
		{"update delay", web.UpdateConfig.Delay, 10 * time.Second},
		{"update order", web.UpdateConfig.Order, swarm.UpdateOrderStartFirst},
		{"rollback default parallelism", web.RollbackConfig.Parallelism, uint64(1)},
		{"rollback monitor", web.RollbackConfig.Monitor, 5 * time.Second},
		{"constraints", tt.Placement.Constraints, []string{"node.role==worker"}},
		{"spread", tt.Placement.Preferences[0].Spread.SpreadDescriptor, "node.labels.zone"},
		{"max per node", tt.Placement.MaxReplicas, uint64(1)},
		{"endpoint mode", web.EndpointSpec.Mode, swarm.ResolutionModeVIP},
		{"ingress port", web.EndpointSpec.Ports[0], swarm.PortConfig{Protocol: "tcp", TargetPort: 80, PublishedPort: 8080, PublishMode: swarm.PortConfigPublishModeIngress}},
		{"host port", web.EndpointSpec.Ports[1], swarm.PortConfig{Protocol: "tcp", TargetPort: 443, PublishedPort: 8443, PublishMode: swarm.PortConfigPublishModeHost}},
		{"networks with aliases", web.TaskTemplate.Networks, []swarm.NetworkAttachmentConfig{{Target: "shop_back", Aliases: []string{"web"}}, {Target: "shop_front", Aliases: []string{"web"}}}},
		{"extra alias", service(t, st, "db").Spec.TaskTemplate.Networks[0].Aliases, []string{"db", "database"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !equal(tc.got, tc.want) {
				t.Errorf("got %#v, want %#v", tc.got, tc.want)
			}
		})
	}
}

func TestStartOrder(t *testing.T) {
	st := basic(t)
	var names []string
	for _, s := range st.Services {
		names = append(names, s.Name)
	}
	if slices.Index(names, "db") > slices.Index(names, "web") {
		t.Errorf("order %v: db must come before web", names)
	}
	if got := service(t, st, "web").DependsOn; !equal(got, []Dependency{{Service: "db", Healthy: true}}) {
		t.Errorf("web depends on %+v, want db healthy", got)
	}
}

func TestNetworksSecretsConfigs(t *testing.T) {
	st := basic(t)
	var nets []string
	for _, n := range st.Networks {
		nets = append(nets, n.Create.Name+" "+n.Create.Driver+" "+n.Create.Labels[NamespaceLabel])
	}
	// outside is external and used by no service: not listed
	want := []string{"shop_back overlay shop", "shop_default overlay shop", "shop_front overlay shop"}
	if !equal(nets, want) {
		t.Errorf("networks %v, want %v", nets, want)
	}
	if len(st.Secrets) != 1 || st.Secrets[0].Name != "shop_token" || string(st.Secrets[0].Data) != "s3cret" || st.Secrets[0].Labels[NamespaceLabel] != "shop" {
		t.Errorf("secrets %+v, want shop_token from file", st.Secrets)
	}
	got := map[string]string{}
	for _, c := range st.Configs {
		got[c.Name] = string(c.Data)
	}
	if !equal(got, map[string]string{"shop_site": "server {}", "shop_fromenv": "conf"}) {
		t.Errorf("configs %v, want content and environment ones", got)
	}
}

func TestExternalNetwork(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "compose.yaml", "services:\n  a:\n    image: busybox\n    networks: [proxy]\nnetworks:\n  proxy:\n    external: true\n")
	st := load(t, Options{Files: []string{dir + "/compose.yaml"}})
	if len(st.Networks) != 1 || !st.Networks[0].External || st.Networks[0].Create.Name != "proxy" {
		t.Errorf("networks %+v, want only external proxy, unprefixed", st.Networks)
	}
	if got := service(t, st, "a").Spec.TaskTemplate.Networks[0].Target; got != "proxy" {
		t.Errorf("attached to %s, want proxy", got)
	}
}

func TestMergeAndProfiles(t *testing.T) {
	tests := []struct {
		name     string
		profiles []string
		services []string
	}{
		{"without profile", nil, []string{"agent", "db", "web"}},
		{"with profile", []string{"jobs"}, []string{"agent", "db", "web", "worker"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := load(t, Options{Files: []string{"testdata/basic.yaml", "testdata/override.yaml"}, Profiles: tt.profiles, Env: map[string]string{"SITE_CONF": "c"}})
			var names []string
			for _, s := range st.Services {
				names = append(names, s.Name)
			}
			slices.Sort(names)
			if !equal(names, tt.services) {
				t.Errorf("services %v, want %v", names, tt.services)
			}
			if r := *service(t, st, "web").Spec.Mode.Replicated.Replicas; r != 5 {
				t.Errorf("replicas %d, want 5 from the second file", r)
			}
		})
	}
}

func TestIncludeExtends(t *testing.T) {
	st := load(t, Options{Files: []string{"testdata/include.yaml"}})
	app := service(t, st, "app")
	if got := app.Spec.TaskTemplate.ContainerSpec.Env; !equal(got, []string{"LOG=debug"}) {
		t.Errorf("extended env %v, want LOG=debug", got)
	}
	if img := service(t, st, "db").Spec.TaskTemplate.ContainerSpec.Image; img != "postgres" {
		t.Errorf("included db image %q", img)
	}
	if st.Services[len(st.Services)-1].Name != "app" {
		t.Errorf("app must start after db: %v", st.Services)
	}
}

func TestDotEnv(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, ".env", "TAG=from-dotenv\nOTHER=x\n")
	writeFile(t, dir, "compose.yaml", "services:\n  a:\n    image: busybox:${TAG}\n    environment: [\"O=${OTHER}\"]\n")
	st := load(t, Options{Files: []string{dir + "/compose.yaml"}, Env: map[string]string{"OTHER": "given"}})
	cs := service(t, st, "a").Spec.TaskTemplate.ContainerSpec
	if cs.Image != "busybox:from-dotenv" || !equal(cs.Env, []string{"O=given"}) {
		t.Errorf("image %s env %v: want .env value, given Env winning over .env", cs.Image, cs.Env)
	}
}

func TestRequiredVariable(t *testing.T) {
	_, err := Load(context.Background(), Options{Files: []string{"testdata/required.yaml"}, ProjectName: "shop"})
	if err == nil {
		t.Fatal("loaded without TAG set")
	}
	for _, want := range []string{"TAG", "TAG must be set"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
}

func TestUnknownKey(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "compose.yaml", "services:\n  a:\n    image: busybox\n    imagee: typo\n")
	_, err := Load(context.Background(), Options{Files: []string{dir + "/compose.yaml"}, ProjectName: "shop"})
	if err == nil || !strings.Contains(err.Error(), "imagee") {
		t.Errorf("error %v, want one naming imagee", err)
	}
}

func TestUnsupportedWarns(t *testing.T) {
	st := load(t, Options{Files: []string{"testdata/unsupported.yaml"}})
	var got []string
	for _, w := range st.Warnings {
		got = append(got, w.String())
	}
	want := []string{
		"service web: services.web.build: not supported by shoal, ignored",
		"service web: services.web.privileged: not supported by shoal, ignored",
	}
	if !equal(got, want) {
		t.Errorf("warnings %q, want %q", got, want)
	}
}
