"""Shared primitives below models/ and stac/: errors, grids and footprints, ids."""
