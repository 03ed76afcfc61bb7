"""subdivide for QGIS: a Processing provider that runs the installed ``subdivide`` command.

QGIS imports this package and calls :func:`classFactory`. The modules runner, commands,
sources, reports and colours import nothing from QGIS (they are tested without it).
"""


def classFactory(iface):
    from .plugin import SubdividePlugin

    return SubdividePlugin(iface)
