"""Shared fixtures: the bundled 花巻 sample, the shared real data, seeded synthetic
municipalities, and plans made from them."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_DIR = ROOT / "data" / "hanamaki_03205"
SAMPLE_SHP = SAMPLE_DIR / "h27ka03205.shp"
SHARED_DATA = ROOT.parent / "shared" / "data"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def need(path: Path, what: str) -> Path:
    """Skip locally when a data file is absent; fail under CI (it must be there)."""
    if not Path(path).exists():
        if IN_CI:
            pytest.fail(f"{what} missing under CI: {path}")
        pytest.skip(f"{what} missing: {path}")
    return Path(path)


@pytest.fixture(scope="session")
def sample_shp() -> Path:
    return need(SAMPLE_SHP, "bundled 花巻 sample shapefile")


@pytest.fixture(scope="session")
def sample_blocks(sample_shp):
    """The bundled sample read through the real e-Stat path (463 canonical town-blocks)."""
    from subdivide.io.townblocks import read_townblocks

    blocks, _ = read_townblocks(sample_shp)
    return blocks


@pytest.fixture(scope="session")
def sample_plan(sample_blocks):
    """The trial's 4 sub-areas (花巻, 大迫, 石鳥谷, 東和) from the 旧市町村 label."""
    from subdivide.model.plan import Plan

    return Plan.from_assignment(sample_blocks, sample_blocks.set_index("key")["OLD_MUNI"])


@pytest.fixture(scope="session")
def shared_data() -> Path:
    return need(SHARED_DATA, "../shared/data")


@pytest.fixture(scope="session")
def synthetic_blocks():
    """Factory: synthetic_blocks(n, seed=0) → canonical town-blocks (cached per args)."""
    from subdivide.testing.synthetic import synthetic_townblocks

    cache = {}

    def make(n: int = 1000, seed: int = 0, **kw):
        key = (n, seed, tuple(sorted(kw.items())))
        if key not in cache:
            cache[key] = synthetic_townblocks(n, seed=seed, **kw)
        return cache[key].copy()

    return make


@pytest.fixture(autouse=True)
def _english_locale(monkeypatch):
    """Tests read the CLI's English output: pin the locale (tests of the Japanese output
    set LANG or pass --lang ja themselves)."""
    for var in ("LC_ALL", "LC_MESSAGES", "LANG"):
        monkeypatch.setenv(var, "C.UTF-8")
