package storecore

import "github.com/ivsrt/ivsrt"

// CheckPublicKeyQuota returns EQUOTA if a public key may not be added to
// the public keys there are.
func CheckPublicKeyQuota(quota ivsrt.PublicKeyQuota, keys int) error {
	if quota.MaxPublicKeys > 0 && keys >= quota.MaxPublicKeys {
		return ivsrt.Errorf(ivsrt.EQUOTA, "Public key quota exceeded: this account may have at most %d public keys.", quota.MaxPublicKeys)
	}
	return nil
}

// PublicKeyImported is the error of importing a key that was imported
// already, as existing.
func PublicKeyImported(fingerprint string, existing ivsrt.PublicKeyARN) error {
	return ivsrt.Errorf(ivsrt.ECONFLICT, "This public key (fingerprint %s) was already imported as %s.", fingerprint, existing)
}
