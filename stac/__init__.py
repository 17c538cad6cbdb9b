"""STAC catalog I/O: scene discovery, pairing, asset fetching, validation and publishing."""
