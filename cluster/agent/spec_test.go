package agent

import (
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/swarm"

	"github.com/shoal-project/shoal/netplane/bridge"
)

// The task container's request carries the sandbox's endpoint so that `docker
// inspect` shows the address with its prefix, the gateway and the MAC, and a network
// ID that stays the same for every task on the bridge.
func TestCreateRequestCarriesSandboxEndpoint(t *testing.T) {
	mac, _ := net.ParseMAC("02:42:ac:1e:00:05")
	sb := bridge.Sandbox{
		ID: "t1", NetNSPath: "/run/netns/t1",
		IP: netip.MustParseAddr("172.30.0.5"), Prefix: netip.MustParsePrefix("172.30.0.0/16"),
		Gateway: netip.MustParseAddr("172.30.0.1"), MAC: mac,
	}
	req, err := createRequest(assigned("t1", "busybox", swarm.TaskStateRunning), "n1", sb)
	if err != nil {
		t.Fatal(err)
	}
	if req.IPAddress != "172.30.0.5/16" || req.Gateway != "172.30.0.1" || req.MacAddress != "02:42:ac:1e:00:05" {
		t.Fatalf("endpoint %q gateway %q mac %q", req.IPAddress, req.Gateway, req.MacAddress)
	}
	if len(req.NetworkID) != 64 {
		t.Fatalf("network ID %q is not 64 hex digits", req.NetworkID)
	}
	sb.IP = netip.MustParseAddr("172.30.0.6")
	other, err := createRequest(assigned("t2", "busybox", swarm.TaskStateRunning), "n1", sb)
	if err != nil {
		t.Fatal(err)
	}
	if other.NetworkID != req.NetworkID {
		t.Fatalf("two tasks on one bridge have network IDs %s and %s", req.NetworkID, other.NetworkID)
	}
	if req.NetNSPath != "/run/netns/t1" {
		t.Fatalf("netns %q", req.NetNSPath)
	}
}

// A task's container is told which generic resources it holds, as Docker
// tells it: named units of a kind joined by commas, a discrete kind's count.
func TestResourceEnv(t *testing.T) {
	held := []swarm.GenericResource{
		{NamedResourceSpec: &swarm.NamedGenericResource{Kind: "gpu", Value: "GPU-1"}},
		{DiscreteResourceSpec: &swarm.DiscreteGenericResource{Kind: "ssd", Value: 2}},
		{NamedResourceSpec: &swarm.NamedGenericResource{Kind: "gpu", Value: "GPU-3"}},
	}
	got := strings.Join(resourceEnv(held), " ")
	if want := "DOCKER_RESOURCE_GPU=GPU-1,GPU-3 DOCKER_RESOURCE_SSD=2"; got != want {
		t.Errorf("env %q, want %q", got, want)
	}
	if env := resourceEnv(nil); len(env) != 0 {
		t.Errorf("env without resources: %q", env)
	}
}
