package cluster

import (
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"
)

// dockerd's answers (compared with 20.10): a listen address must be given; a
// data path address must be a non-zero IP or an interface, without a port;
// certificates live at least an hour.
func TestValidateSwarmRequests(t *testing.T) {
	spec := func(expiry time.Duration) swarm.Spec {
		var s swarm.Spec
		s.CAConfig.NodeCertExpiry = expiry
		return s
	}
	const badAddr = "data path address must be a non-zero IP address or network interface (without a port number)"
	const shortCert = "rpc error: code = InvalidArgument desc = minimum certificate expiry time is: 1h0m0s"
	const listen = "0.0.0.0:2377"
	const noListen = `invalid ListenAddr "": invalid empty address`
	for _, c := range []struct {
		name string
		err  error
		want string
	}{
		{"no data path address", ValidateInitRequest(swarm.InitRequest{ListenAddr: listen}, 0), ""},
		{"data path 0.0.0.0", ValidateInitRequest(swarm.InitRequest{ListenAddr: listen, DataPathAddr: "0.0.0.0"}, 0), badAddr},
		{"data path ::", ValidateJoinRequest(swarm.JoinRequest{ListenAddr: listen, DataPathAddr: "::"}), badAddr},
		{"data path with a port", ValidateInitRequest(swarm.InitRequest{ListenAddr: listen, DataPathAddr: "127.0.0.1:4789"}, 0), badAddr},
		{"data path IP", ValidateInitRequest(swarm.InitRequest{ListenAddr: listen, DataPathAddr: "10.0.0.2"}, 0), ""},
		{"data path interface", ValidateJoinRequest(swarm.JoinRequest{ListenAddr: listen, DataPathAddr: "lo"}), ""},
		{"no listen address", checkListenAddr(""), noListen},
		{"a listen address", checkListenAddr("0.0.0.0:2377"), ""},
		{"cert expiry 15m", ValidateSwarmSpec(spec(15*time.Minute), 0), shortCert},
		{"cert expiry just under an hour", ValidateInitRequest(swarm.InitRequest{ListenAddr: listen, Spec: spec(time.Hour - time.Second)}, 0), shortCert},
		{"cert expiry negative", ValidateSwarmSpec(spec(-time.Hour), 0), shortCert},
		{"cert expiry an hour", ValidateSwarmSpec(spec(time.Hour), 0), ""},
		{"cert expiry default", ValidateSwarmSpec(spec(0), 0), ""},
		{"cert expiry 30s where a lab allows 10s", ValidateSwarmSpec(spec(30*time.Second), 10*time.Second), ""},
		{"cert expiry 5s where a lab allows 10s", ValidateSwarmSpec(spec(5*time.Second), 10*time.Second), "rpc error: code = InvalidArgument desc = minimum certificate expiry time is: 10s"},
	} {
		switch {
		case c.want == "" && c.err != nil:
			t.Errorf("%s: refused: %v", c.name, c.err)
		case c.want != "" && (c.err == nil || c.err.Error() != c.want || !isInvalid(c.err)):
			t.Errorf("%s: %v, want %q (invalid parameter)", c.name, c.err, c.want)
		}
	}
}
