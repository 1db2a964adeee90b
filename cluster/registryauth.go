package cluster

import (
	"github.com/moby/moby/api/types/swarm"

	"github.com/shoal-project/shoal/cluster/dispatcher"
	"github.com/shoal-project/shoal/cluster/store"
)

// setRegistryAuth keeps the registry credentials a service was created or updated
// with (X-Registry-Auth), for the workers that pull its image. They live in the
// encrypted store as a secret-kind object, never in the service, so inspect never
// shows them. Empty credentials remove what was kept.
func setRegistryAuth(tx store.Tx, serviceID, encoded string) error {
	id := dispatcher.RegistryAuthID(serviceID)
	cur, err := tx.Secret(id)
	switch {
	case err != nil && encoded == "":
		return nil
	case err != nil:
		return tx.CreateSecret(&swarm.Secret{ID: id, Spec: swarm.SecretSpec{
			Annotations: swarm.Annotations{Name: id, Labels: map[string]string{"com.shoal.internal": "registry-auth"}},
			Data:        []byte(encoded),
		}})
	case encoded == "":
		return tx.DeleteSecret(id)
	}
	cur.Spec.Data = []byte(encoded)
	return tx.UpdateSecret(cur)
}
