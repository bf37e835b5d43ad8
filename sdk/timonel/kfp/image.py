"""The image every Timonel component runs on (built from the Dockerfile by ``make image``)."""

import os

from timonel._version import __version__

#: The image of every component: ``$TIMONEL_COMPONENT_IMAGE``, or this version's published one.
COMPONENT_IMAGE = (
    os.environ.get("TIMONEL_COMPONENT_IMAGE") or f"ghcr.io/timonel/timonel:{__version__}"
)
