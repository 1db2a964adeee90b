package image

import (
	"encoding/base64"
	"encoding/json"

	"github.com/moby/moby/api/types/registry"
)

// DecodeAuth decodes registry credentials as the Engine API carries them (the
// X-Registry-Auth header: base64url JSON, padded or not). Like dockerd it treats
// missing or unreadable credentials as anonymous (nil).
func DecodeAuth(encoded string) *registry.AuthConfig {
	if encoded == "" {
		return nil
	}
	raw, err := base64.URLEncoding.DecodeString(encoded)
	if err != nil {
		if raw, err = base64.RawURLEncoding.DecodeString(encoded); err != nil {
			return nil
		}
	}
	var auth registry.AuthConfig
	if json.Unmarshal(raw, &auth) != nil || auth == (registry.AuthConfig{}) {
		return nil
	}
	return &auth
}
