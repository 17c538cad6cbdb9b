"""Write small static catalogs laid out like the real Maxar and Umbra open-data catalogs.

Used by the demo and the tests: given GeoTIFFs and their acquisition metadata, write

- Maxar Open Data (STAC 1.1): ``events/catalog.json`` → ``events/<event>/collection.json`` →
  ``events/<event>/ard/acquisition_collections/<catalog_id>_collection.json`` → items at
  ``events/<event>/ard/<utm_zone>/<quadkey>/<YYYY-MM-DD>/<catalog_id>.json`` with the ``visual``
  COG and a ``data-mask`` GeoPackage beside them; item ids ``<zone>/<quadkey>/<catalog_id>``,
  properties as in Maxar's ARD items (``catalog_id``, ``utm_zone``, ``quadkey`` (Bing tile,
  level 12), ``grid:code``, ``view:*``, ``proj:*``, ``tile:*``);
- Umbra Open Data: ``stac/catalog.json`` → ``stac/YYYY/`` → ``YYYY-MM/`` → ``YYYY-MM-DD/``
  sub-catalogs → items at ``stac/YYYY/YYYY-MM/YYYY-MM-DD/<uuid>/<uuid>.json`` with the
  ``asset-GEC`` GeoTIFF, ``sar:*``, ``sat:*``, ``view:*`` and ``umbra:*`` properties;
- an Umbra v2 sidecar: ``sar-data/tasks/<task>/<task id>/<acquisition>/<acquisition>.stac.v2.json``
  whose assets are keyed by file name and point at the private processing bucket.

Every asset carries ``file:checksum`` (multihash sha2-256) and ``file:size``. Documents use
relative links (self-contained, relocatable) and validate against the STAC 1.1 schemas.
"""

from samples.catalog.common import SampleScene, raster_facts
from samples.catalog.maxar import quadkey, write_maxar_catalog
from samples.catalog.umbra import write_umbra_catalog, write_umbra_sidecar

__all__ = [
    "SampleScene",
    "quadkey",
    "raster_facts",
    "write_maxar_catalog",
    "write_umbra_catalog",
    "write_umbra_sidecar",
]
