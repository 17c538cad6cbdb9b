"""Publishing a registered pair's products as a STAC Item: to a static catalog or a STAC API.

Both sinks are idempotent per Item id, and every document they write validates against the STAC
JSON schemas (:mod:`stac.schemas`, offline).
"""

from stac.publish.api import PublicFolder, api_document, publish_api
from stac.publish.items import PublishedPair, build_item
from stac.publish.static import publish_static

__all__ = [
    "PublicFolder",
    "PublishedPair",
    "api_document",
    "build_item",
    "publish_api",
    "publish_static",
]
