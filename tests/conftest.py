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
# Plans record the day they were made (UTC). Tests compare bytes written by separate
# processes (the CLI, QGIS, the editor); a run that crosses midnight would see two dates.
# Every process the tests start inherits this fixed day; test_plan_core checks the unset case.
os.environ.setdefault("SOURCE_DATE_EPOCH", "1700000000")


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


@pytest.fixture
def spill_report_calls(monkeypatch):
    """Count the spill reports computed: ``(calls, real)``, where every call of
    ``subdivide.analysis.spill.spill_report`` appends its ``distances_km`` to ``calls`` and
    ``real`` is the unwrapped function."""
    import subdivide.analysis.spill as spill_mod

    calls, real = [], spill_mod.spill_report

    def counting(*a, **kw):
        calls.append(kw.get("distances_km"))
        return real(*a, **kw)

    monkeypatch.setattr(spill_mod, "spill_report", counting)
    return calls, real


@pytest.fixture(autouse=True)
def _english_locale(monkeypatch):
    """Tests read the CLI's English output: pin the locale (tests of the Japanese output
    set LANG or pass --lang ja themselves)."""
    for var in ("LC_ALL", "LC_MESSAGES", "LANG"):
        monkeypatch.setenv(var, "C.UTF-8")


#: tests that take seconds each but carry no more weight than their quick neighbours: CI
#: runs them (it runs everything); `pytest -m "not slow"` (everyday work) leaves them out
_SLOW_TESTS = {
    "tests/test_report.py::test_report_draws_the_planners_curve_for_an_automatic_plan",
    "tests/test_map.py::test_layers_basemaps_and_attribution",
    "tests/test_report.py::test_report_escapes_names_and_is_deterministic",
    "tests/test_report.py::test_sample_report_files",
    "tests/test_one_owner.py::test_map_points_read_a_cp932_csv",
    "tests/test_planning.py::test_cli_auto_overlay_and_import",
    "tests/test_packet.py::test_packet_is_deterministic_and_marks_hostile_names_as_text",
    "tests/test_spill_cli.py::test_cli_writes_bom_crlf_csv_and_json",
    "tests/test_planning.py::test_cli_by_old_muni_edit_and_refusals",
    "tests/test_screening.py::test_cli_writes_every_output_with_japanese_headers",
    "tests/test_qgis.py::test_end_process_tree_kills_children",
    "tests/test_editor.py::test_compare_lists_moved_blocks_and_changes",
    "tests/test_report.py::test_report_refuses_overwrite",
    "tests/test_plan_properties.py::test_auto_plans_partition_conserve_and_stay_contiguous",
    "tests/test_report.py::test_cli_report",
    "tests/test_spill_cli.py::test_cli_cp932_and_force",
    "tests/test_validate.py::test_corrupted_bytes_give_findings_never_a_crash",
    "tests/test_validate.py::test_cli_validates_several_packages",
    "tests/test_map.py::test_exposure_geometry_matches_spill_report",
}
#: parametrised suites: everyday runs keep this many cases of each kind
_KEEP_PER_KIND = {"tests/test_corpus.py::test_corpus_case": 2, "tests/test_validate.py::test_broken_package": 8}


def pytest_collection_modifyitems(config, items):
    seen: dict[str, int] = {}
    for item in items:
        base = item.nodeid.split("[", 1)[0]
        slow = item.nodeid in _SLOW_TESTS or item.get_closest_marker("browser") is not None
        if base in _KEEP_PER_KIND and "[" in item.nodeid:
            # corpus: per class (the id's first word); broken packages: all one kind
            kind = base if base.endswith("test_broken_package") else base + ":" + item.nodeid.split("[", 1)[1].split("-", 1)[0]
            seen[kind] = seen.get(kind, 0) + 1
            slow = slow or seen[kind] > _KEEP_PER_KIND[base]
        if slow and item.get_closest_marker("slow") is None:
            item.add_marker(pytest.mark.slow)
