"""storage/: the overlay2 driver, the layer store (chain ids, refcounts, container layers) and
safe layer-tar extraction. It knows layers, not images (see docs/storage.md)."""
