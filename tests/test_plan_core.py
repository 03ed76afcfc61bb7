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
    assert any(f.rule == "CONTIGUITY-ISLAND" for f in ok.check())


def test_corner_touch_is_not_adjacency():
    b = grid_blocks(nx=2, ny=2)
    lab = pd.Series(["A", "B", "B", "A"], index=b["key"])  # diagonal pairs touch at one point
    with pytest.raises(PlanCheckError, match="not contiguous"):
        Plan.from_assignment(b, lab)


def test_plan_date_is_today_unless_pinned(monkeypatch, tmp_path):
    """The plan's date is today's (UTC); SOURCE_DATE_EPOCH pins it (conftest pins it for
    every test process so byte comparisons across processes survive midnight)."""
    from datetime import datetime, timezone

    from subdivide.model.plan import reproducible_date

    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    before = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    got = reproducible_date()
    after = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    assert got in (before, after)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    assert reproducible_date() == "2023-11-14"
    b = grid_blocks()
    saved = read_plan(Plan.from_assignment(b, stripes(b, 4)).save(tmp_path / "p.gpkg"))
    assert saved.metadata["date"] == "2023-11-14"


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


# ============================================================================ edited outside the tool
def _sql(path, *statements):
    import sqlite3

    con = sqlite3.connect(path)
    con.create_function("ST_IsEmpty", 1, lambda g: 1 if g is None else 0)
    for fn in ("ST_MinX", "ST_MaxX", "ST_MinY", "ST_MaxY"):
        con.create_function(fn, 1, lambda g: 0.0)
    for st_ in statements:
        con.execute(st_)
    con.commit()
    con.close()


@pytest.fixture()
def saved_plan(tmp_path):
    b = grid_blocks(6, 5)
    plan = Plan.from_assignment(b, stripes(b, 3))
    return plan, plan.save(tmp_path / "p.gpkg")


def test_saved_plan_records_its_block_count(saved_plan):
    plan, path = saved_plan
    assert read_plan(path).metadata["n_blocks"] == len(plan.blocks) == 30


def test_keys_retyped_to_integer_are_repadded_with_a_warning(saved_plan):
    plan, path = saved_plan
    _sql(path, "ALTER TABLE townblocks ADD COLUMN k2 INTEGER", "UPDATE townblocks SET k2 = CAST(key AS INTEGER)",
         "ALTER TABLE townblocks DROP COLUMN key", "ALTER TABLE townblocks RENAME COLUMN k2 TO key")
    with pytest.warns(UserWarning, match="re-padded"):
        back = read_plan(path)
    assert list(back.blocks["key"]) == list(plan.blocks["key"])
    assert back.blocks["key"].str.len().eq(9).all()


def test_intact_plan_loads_without_warning(saved_plan):
    import warnings

    _, path = saved_plan
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_plan(path)


@pytest.mark.parametrize("statements, words", [
    (["DELETE FROM townblocks WHERE fid = 3"], ["deleted"]),
    (["UPDATE townblocks SET subarea = NULL WHERE fid = 4"], ["NULL", "032050003"]),
    (["UPDATE townblocks SET subarea = 'x' WHERE fid = 4"], ["townblocks"]),  # GDAL reads text as 0
    (["UPDATE townblocks SET subarea = 1.5 WHERE fid = 4"], ["townblocks"]),  # GDAL truncates: counts differ
    (["UPDATE townblocks SET subarea = 3 WHERE fid = 1"], ["counts"]),
    (["UPDATE subareas SET name = NULL WHERE subarea = 2"], ["no name"]),
    (["UPDATE plan_meta SET value = '{oops' WHERE key = 'muni_code'"], ["JSON"]),
    (["DELETE FROM plan_meta WHERE key = 'muni_code'"], ["municipality code"]),
    (["UPDATE plan_meta SET value = '\"13101\"' WHERE key = 'muni_code'"], ["13101"]),
    (["UPDATE plan_meta SET value = '7' WHERE key = 'n_blocks'"], ["30"]),
    (["UPDATE plan_meta SET value = '99' WHERE key = 'max_subareas'"], ["14"]),
    (["UPDATE subareas SET name = '区01' WHERE subarea = 2"], ["NAME-FORMAT"]),
])
def test_plan_edited_outside_is_an_error_saying_how_to_rebuild(saved_plan, statements, words):
    _, path = saved_plan
    _sql(path, *statements)
    with pytest.raises(UserError) as ei:
        read_plan(path)
    msg = ei.value.message
    assert all(w in msg for w in words), msg
    assert "fix:" in msg and "where:" in msg


@pytest.mark.parametrize("name, ok", [("区09地域", True), ("区09", False), ("区\n01地域", False), ("区01\t地域", False),
                                      ("区\u200b地域", False), (" 区01地域", False), ("地域", False)])
def test_plan_refuses_names_the_validator_refuses_with_the_same_rule(name, ok):
    from subdivide.core.names import name_problem

    b = grid_blocks(6, 5)
    plan = Plan.from_assignment(b, stripes(b, 2))
    table = plan.subareas[["subarea", "name", "display_order"]].copy()
    table.loc[0, "name"] = name
    assert (name_problem(name) is None) == ok
    if ok:
        assert plan.with_assignment(plan.blocks["subarea"], table).subareas["name"].iloc[0] == name
    else:
        with pytest.raises(PlanCheckError, match="NAME-FORMAT"):
            plan.with_assignment(plan.blocks["subarea"], table)


# ---------------------------------------------------------------- the contiguity check on load (issue 19)
def _extra_vertex(geom, x, y):
    """The square with one more vertex (x, y) on its border: same shape, no longer edge-matched."""
    ring = list(geom.exterior.coords)
    for i in range(len(ring) - 1):
        seg = shapely.LineString([ring[i], ring[i + 1]])
        if seg.distance(shapely.Point(x, y)) < 1e-9 and (x, y) not in ring:
            return shapely.Polygon(ring[: i + 1] + [(x, y)] + ring[i + 1:])
    return geom


@pytest.mark.parametrize("mismatched", [False, True])
def test_fast_contiguity_check_finds_what_the_adjacency_finds(mismatched):
    """Sub-area A is an L whose two arms meet only across one border; with an extra vertex on one
    side of it (not a valid coverage: edge matching misses the pair) A is still contiguous. The
    check on load (shared edges first, boundaries intersected only around detached blocks) must
    give the findings of the full adjacency, in both cases, and for a truly detached block."""
    from subdivide.model.contiguity import block_adjacency, contiguity_breaks

    b = grid_blocks(nx=4, ny=3)
    lab = pd.Series("B", index=b["key"])
    arm = (b["row"] == 0) | (b["col"] == 0)          # the L: bottom row and left column
    lab[b.loc[arm, "key"].to_numpy()] = "A"
    if mismatched:                                   # the joint between (0,0) and (0,1): extra vertex on one side
        i = b.index[(b["col"] == 0) & (b["row"] == 1)][0]
        b.loc[i, "geometry"] = _extra_vertex(b.geometry[i], 500.0, 1000.0)
        assert not shapely.coverage_is_valid(b.geometry.values)
    plan = Plan.from_assignment(b, lab)               # no PlanCheckError: A is contiguous
    assert [f.rule for f in plan.check()] == []
    edges_only = plan._shared_edge_graph
    assert (edges_only.nnz < plan.adjacency.nnz) == mismatched
    # a block of A cut off (top-left corner moved to B's far side is impossible: detach the
    # bottom-right block of A by giving its neighbour to B) — both paths name the same block
    lab2 = lab.copy()
    lab2[b.loc[(b["row"] == 0) & (b["col"] == 2), "key"].to_numpy()] = "B"
    with pytest.raises(PlanCheckError) as exc:
        Plan.from_assignment(b, lab2)
    cut = b.loc[(b["row"] == 0) & (b["col"] == 3), "key"].item()
    assert "town-blocks are cut off" in str(exc.value) and cut in str(exc.value)
    full = Plan.from_assignment(b, lab2, island_exceptions=[cut])
    bad, excused = contiguity_breaks(block_adjacency(full.blocks), full.blocks["subarea"].to_numpy(),
                                     full.blocks["key"].to_numpy(), [cut])
    assert full.blocks["key"][excused].tolist() == [cut] and not bad.any()
    assert [f.rule for f in full.check()] == ["CONTIGUITY-ISLAND"]


def test_a_refused_name_with_a_line_break_stays_on_its_line():
    """The refusal lists the sub-area names; one holding a line break or an escape sequence
    is shown with ``\\n`` / ``\\x1b`` so that the message keeps its lines (and the terminal
    acts on nothing)."""
    b = grid_blocks()
    labels = stripes(b, 2)
    names = {v: n for v, n in zip(sorted(labels.unique()), ("北\n部地域", "南\x1b[2J地域"))}
    with pytest.raises(PlanCheckError) as exc:
        Plan.from_assignment(b, labels, names=names)
    text = str(exc.value)
    assert "北\\n部地域" in text and "南\\x1b[2J地域" in text
    assert "\x1b" not in text and all(not line.startswith("部地域") for line in text.splitlines())
