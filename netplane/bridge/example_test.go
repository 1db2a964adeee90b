package bridge_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"

	"github.com/shoal-project/shoal/netplane/bridge"
)

// A task's network: create the bridge (or adopt it after a restart), give the task a
// sandbox to run in, and publish one of its ports on the host.
func Example() {
	ctx := context.Background()
	network, err := bridge.New(ctx, bridge.Config{
		StateDir: "/var/lib/shoal/bridge",
		NetNSDir: "/run/shoal/netns",
		Logger:   slog.Default(),
	})
	if err != nil {
		log.Fatal(err)
	}
	defer network.Close() // the bridge and sandboxes stay for the next daemon

	sb, err := network.CreateSandbox(ctx, "task-1")
	if err != nil {
		log.Fatal(err)
	}
	// sb.NetNSPath is the network namespace path handed to the container runtime.
	ports, err := network.PublishPorts(ctx, sb.ID, []bridge.PortMapping{{Protocol: "tcp", ContainerPort: 80}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s at %s, port 80 on host port %d\n", sb.ID, sb.IP, ports[0].HostPort)

	// When the task is gone:
	if err := network.RemoveSandbox(ctx, sb.ID); err != nil {
		log.Fatal(err)
	}
}
