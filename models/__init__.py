"""Registration engine: grids, rasters, preprocessing, matchers, methods, displacement maps,
scoring."""
