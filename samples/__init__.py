"""Sample and fixture synthesis: synthetic scenes, the sample event, sample STAC catalogs."""
