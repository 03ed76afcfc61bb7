"""The plugin object QGIS creates: registers the Processing provider (also headless, for
``qgis_process``, through ``initProcessing``)."""
from __future__ import annotations

from qgis.core import QgsApplication


class SubdividePlugin:
    def __init__(self, iface=None):
        self.iface = iface
        self.provider = None

    def initProcessing(self):
        from .provider import SubdivideProvider

        if self.provider is None:
            self.provider = SubdivideProvider()
            QgsApplication.processingRegistry().addProvider(self.provider)

    def initGui(self):
        self.initProcessing()

    def unload(self):
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
