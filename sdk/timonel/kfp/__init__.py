"""Timonel as Kubeflow Pipelines v2 components, and the pipelines built from them.

``COMPONENT_IMAGE`` is the one place the image of every component is set: it is read when the
components are defined (at import), from ``$TIMONEL_COMPONENT_IMAGE`` or the default published
image of this version. A platform team that republishes the components sets the variable and
runs ``make components`` (see components/README.md).
"""

from timonel.kfp.image import COMPONENT_IMAGE

__all__ = ["COMPONENT_IMAGE"]
