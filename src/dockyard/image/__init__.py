"""image/: references, the content store, registry client, manifests, pull/push, save/load, mkimage."""
