"""subdivide: split a municipality into emergency-alert delivery sub-areas (緊急速報メール 細分化).

The Python API takes and returns GeoDataFrames:

>>> from subdivide import read_townblocks          # e-Stat 小地域 → canonical town-blocks
>>> blocks, report = read_townblocks("data/hanamaki_03205/h27ka03205.shp")  # doctest: +SKIP

See README.md for the command line.
"""
__version__ = "0.1.0"

from subdivide.core.constants import MAX_MUNICIPALITIES, MAX_SUBAREAS  # noqa: E402,F401


def __getattr__(name):  # lazy re-exports keep `import subdivide` fast
    if name == "read_townblocks":
        from subdivide.io.townblocks import read_townblocks

        return read_townblocks
    if name == "Plan":
        from subdivide.model.plan import Plan

        return Plan
    raise AttributeError(name)
