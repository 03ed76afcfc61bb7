"""The Plan's refusals, metrics and saved form, on a seeded grid municipality
(independent of the ingestion code, so a Plan bug shows up here first)."""
import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import given, settings, strategies as st

from subdivide.core.errors import PlanCheckError, UserError
from subdivide.model.plan import Plan, default_subarea_name, read_plan


def grid_blocks(nx=12, ny=10, size=1000.0, seed=0):
    rng = np.random.default_rng(seed)
    xs, ys = np.meshgrid(np.arange(nx), np.arange(ny))
    geoms = shapely.box(xs.ravel() * size, ys.ravel() * size, (xs.ravel() + 1) * size, (ys.ravel() + 1) * size)
    n = nx * ny
    return gpd.GeoDataFrame({
        "key": [f"03205{i:04d}" for i in range(n)], "name": [f"町{i}" for i in range(n)],
        "muni_code": "03205", "population": rng.integers(0, 500, n), "households": rng.integers(0, 200, n),
        "area_official_m2": size * size, "island": False, "enclave": False, "multipart": False,
        "repaired": False, "col": xs.ravel(), "row": ys.ravel()}, geometry=geoms, crs=6678)


def stripes(blocks, k):
    return pd.Series((blocks["col"].to_numpy() * k) // (blocks["col"].max() + 1), index=blocks["key"]).map(
        lambda i: f"区{i:02d}")


def test_stripes_plan_metrics_are_exact():
    b = grid_blocks()
    plan = Plan.from_assignment(b, stripes(b, 3))
    m = plan.metrics
    assert list(m["name"]) == ["区00地域", "区01地域", "区02地域"]
    assert list(m["code"]) == ["0320501", "0320502", "0320503"]
    assert m["area_km2"].tolist() == pytest.approx([40.0, 40.0, 40.0])
    assert m["perimeter_km"].tolist() == pytest.approx([28.0, 28.0, 28.0])
    assert m["polsby_popper"][0] == pytest.approx(4 * np.pi * 40 / 28 ** 2)
    assert m["hull_ratio"].tolist() == pytest.approx([1, 1, 1])
    assert m["population"].sum() == b["population"].sum()
    adj = plan.subarea_adjacency
    assert adj[["a", "b"]].values.tolist() == [[1, 2], [2, 3]]
    assert adj["border_km"].tolist() == pytest.approx([10.0, 10.0])


def test_refuses_more_than_14_and_the_limit_cannot_be_raised():
    b = grid_blocks(nx=15, ny=2)
    lab = pd.Series(b["col"].to_numpy(), index=b["key"])
    with pytest.raises(PlanCheckError, match="15 sub-areas; at most 14"):
        Plan.from_assignment(b, lab)
    with pytest.raises(UserError, match="can be lowered, not raised"):
        Plan.from_assignment(b, lab, max_subareas=15)
    with pytest.raises(PlanCheckError, match="3 sub-areas; at most 2"):
        Plan.from_assignment(grid_blocks(), stripes(grid_blocks(), 3), max_subareas=2)


def test_refuses_unassigned_double_and_unknown_keys():
    b = grid_blocks()
    lab = stripes(b, 2)
    with pytest.raises(PlanCheckError, match="unassigned.*032050000"):
        Plan.from_assignment(b, lab.iloc[1:])
    doubled = pd.concat([lab, lab.iloc[:1]])
    with pytest.raises(PlanCheckError, match="more than once.*032050000"):
        Plan.from_assignment(b, doubled)
    extra = pd.concat([lab, pd.Series({"999999999": "区00"})])
    with pytest.raises(PlanCheckError, match="not town-blocks.*999999999"):
        Plan.from_assignment(b, extra)


def test_refuses_empty_subarea_and_disconnected_without_exception():
    b = grid_blocks()
    plan = Plan.from_assignment(b, stripes(b, 2))
    table = pd.concat([plan.subareas, pd.DataFrame({"subarea": [3], "name": ["空地域"], "display_order": [3]})])
    with pytest.raises(PlanCheckError, match="no town-block"):
        plan.with_assignment(plan.blocks["subarea"], subareas=table)
    lab = stripes(b, 2)
    lab.iloc[0] = "区01"  # corner block of the west stripe moved to the east stripe: detached
    with pytest.raises(PlanCheckError, match="not contiguous.*032050000"):
        Plan.from_assignment(b, lab)
    ok = Plan.from_assignment(b, lab, island_exceptions=["032050000"])
    assert any(f.rule == "PLAN-ISLAND-EXCEPTION" for f in ok.check())


def test_corner_touch_is_not_adjacency():
    b = grid_blocks(nx=2, ny=2)
    lab = pd.Series(["A", "B", "B", "A"], index=b["key"])  # diagonal pairs touch at one point
    with pytest.raises(PlanCheckError, match="not contiguous"):
        Plan.from_assignment(b, lab)


def test_saved_plan_round_trips_byte_identically(tmp_path, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    b = grid_blocks()
    plan = Plan.from_assignment(b, stripes(b, 4), metadata={"inputs": [{"path": "x.shp", "sha256": "0" * 64}]})
    a = plan.save(tmp_path / "a.gpkg")
    c = plan.save(tmp_path / "c.gpkg")
    assert a.read_bytes() == c.read_bytes()
    back = read_plan(a)
    assert back.muni_code == "03205"
    assert back.metadata["date"] == "2023-11-14"
    assert back.metadata["inputs"][0]["path"] == "x.shp"
    pd.testing.assert_frame_equal(back.metrics, plan.metrics)
    assert back.blocks["key"].tolist() == plan.blocks["key"].tolist()
    with pytest.raises(UserError, match="--force"):
        plan.save(a)


def test_read_plan_rejects_other_files(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        read_plan(tmp_path / "none.gpkg")
    (tmp_path / "x.gpkg").write_text("not a geopackage")
    with pytest.raises(UserError, match="not a readable GeoPackage"):
        read_plan(tmp_path / "x.gpkg")


@pytest.mark.parametrize("label,name", [("花巻", "花巻地域"), ("花巻市(旧)", "花巻地域"), ("大迫町", "大迫地域"),
                                        ("旧石鳥谷町", "石鳥谷地域"), ("東和地域", "東和地域")])
def test_default_names(label, name):
    assert default_subarea_name(label) == name


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), k=st.integers(1, 14))
def test_grown_regions_are_complete_contiguous_and_conserve_totals(seed, k):
    """Regions grown from random seeds on the grid graph: the plan accepts them, every
    block is in exactly one sub-area, and area and population are conserved."""
    b = grid_blocks(nx=8, ny=7, seed=seed)
    rng = np.random.default_rng(seed)
    n = len(b)
    label = -np.ones(n, int)
    label[rng.choice(n, k, replace=False)] = np.arange(k)
    col, row = b["col"].to_numpy(), b["row"].to_numpy()
    while (label < 0).any():
        for i in rng.permutation(np.flatnonzero(label < 0)):
            nb = np.flatnonzero((abs(col - col[i]) + abs(row - row[i]) == 1) & (label >= 0))
            if len(nb):
                label[i] = label[rng.choice(nb)]
    plan = Plan.from_assignment(b, pd.Series(label, index=b["key"]))
    assert plan.k == k
    assert plan.blocks["key"].is_unique and len(plan.blocks) == n
    assert plan.metrics["population"].sum() == b["population"].sum()
    assert plan.metrics["area_km2"].sum() == pytest.approx(b.area.sum() / 1e6)
    assert plan.metrics["n_blocks"].sum() == n


def test_each_refusal_says_how_to_fix_it():
    b = grid_blocks()
    plan = Plan.from_assignment(b, stripes(b, 2))
    table = plan.subareas.copy()
    table.loc[1, "name"] = table.loc[0, "name"]
    with pytest.raises(PlanCheckError, match="names repeat") as ei:
        plan.with_assignment(plan.blocks["subarea"], subareas=table)
    assert "own name" in ei.value.fix and "island" not in ei.value.fix
