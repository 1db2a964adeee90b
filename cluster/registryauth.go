package cluster

import (
	"github.com/shoal-project/shoal/cluster/store"
)

// setRegistryAuth keeps the registry credentials a service was created or updated
// with (X-Registry-Auth), for the nodes that pull its image. They live in the
// encrypted store as a store-only object, never in the service, so inspect never
// shows them and `docker secret ls` never lists them. Empty credentials remove
// what was kept; a secret-kind object an older shoal kept them in goes too.
func setRegistryAuth(tx store.Tx, serviceID, encoded string) error {
	if _, err := tx.Secret(legacyRegistryAuthID(serviceID)); err == nil {
		if err := tx.DeleteSecret(legacyRegistryAuthID(serviceID)); err != nil {
			return err
		}
	}
	cur, err := tx.RegistryAuth(serviceID)
	switch {
	case err != nil && encoded == "":
		return nil
	case err != nil:
		return tx.CreateRegistryAuth(&store.RegistryAuth{ID: serviceID, Encoded: encoded})
	case encoded == "":
		return tx.DeleteRegistryAuth(serviceID)
	}
	cur.Encoded = encoded
	return tx.UpdateRegistryAuth(cur)
}

// legacyRegistryAuthID is where an older shoal kept a service's credentials: a
// secret-kind object.
func legacyRegistryAuthID(serviceID string) string { return serviceID + ".registry-auth" }
