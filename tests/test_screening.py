"""Screening (issue 15): every municipality of a prefecture file planned and ranked;
identical whatever the worker count; resumable without computing anything twice."""
from __future__ import annotations

import json
import zipfile

import numpy as np
import pandas as pd
import pytest

from subdivide.analysis.screening import (COLUMNS, Screening, ScreenOptions, parse_k_range, rank_table,
                                          split_municipalities)
from subdivide.cli.main import main
from subdivide.core.errors import UserError
from subdivide.testing.synthetic import synthetic_prefecture, write_estat_shapefile

#: small, fast planner settings for the tests (the command's defaults try k = 2–14)
FAST = ScreenOptions(k_min=2, k_max=3, restarts=2, seed=0)
SIZES = [24, 36, 30, 44, 28]


@pytest.fixture(scope="module")
def pref_shp(tmp_path_factory):
    """A synthetic prefecture of five municipalities in one e-Stat Shapefile; one of them
    (03203) has nobody living in it, so it cannot be screened."""
    g = synthetic_prefecture(SIZES, pref="03", seed=5)
    g.loc[g["KEY_CODE"].str.startswith("03203"), "JINKO"] = 0
    path = tmp_path_factory.mktemp("pref") / "h27ka03.shp"
    return write_estat_shapefile(g, path)


@pytest.fixture(scope="module")
def local_table(pref_shp):
    return Screening([pref_shp], options=FAST, workers=0).solve()


def test_every_municipality_is_in_the_table_once(local_table):
    assert sorted(local_table["muni_code"]) == [f"03{201 + i:03d}" for i in range(len(SIZES))]
    assert local_table["muni_code"].is_unique
    assert list(local_table.columns) == list(COLUMNS) + ["outline_wkb"]


def test_a_municipality_that_fails_is_reported_and_does_not_stop_the_run(local_table):
    bad = local_table.set_index("muni_code").loc["03203"]
    assert bad["status"] == "failed"
    assert "resident" in bad["reason"]
    ok = local_table[local_table["status"] == "ok"]
    assert len(ok) == len(SIZES) - 1


def test_ranked_by_residents_spared_per_event(local_table):
    ok = local_table[local_table["status"] == "ok"]
    assert list(ok["rank"]) == list(range(1, len(ok) + 1))
    assert (np.diff(ok["spared_per_event_mean"].to_numpy()) <= 0).all()
    # the benefit is the recommended plan's spared share times the population
    np.testing.assert_allclose(ok["spared_per_event_mean"], (ok["spared_share_mean"] * ok["population"]).round(1))
    # the worst L spares no more than the mean over L, and has its own ranking
    assert (ok["spared_share_worst"] <= ok["spared_share_mean"] + 1e-9).all()
    assert sorted(ok["rank_worst_L"]) == list(range(1, len(ok) + 1))
    assert local_table.loc[local_table["status"] != "ok", "rank"].isna().all()


def test_figures_match_a_direct_planner_run(pref_shp, local_table):
    """The table holds what regionalize() says for that municipality (no extra model)."""
    from subdivide.io.townblocks import read_townblocks
    from subdivide.make.regionalize import regionalize

    blocks, _ = read_townblocks(pref_shp, muni_code="03201")
    res = regionalize(blocks, k=range(2, 4), restarts=2, seed=0, muni_code="03201")
    row = local_table.set_index("muni_code").loc["03201"]
    assert row["recommended_k"] == res.recommended_k
    t = res.table.set_index("k")
    assert row["spared_share_mean"] == pytest.approx(t.loc[res.recommended_k, "spared_share_mean"])
    assert row["population"] == blocks["population"].sum()


@pytest.mark.slow
def test_one_and_two_workers_give_the_same_table(pref_shp, local_table):
    one = Screening([pref_shp], options=FAST, workers=1).solve()
    two = Screening([pref_shp], options=FAST, workers=2).solve()
    pd.testing.assert_frame_equal(one, two)
    pd.testing.assert_frame_equal(one, local_table)


class _Interrupt:
    """A progress callback that raises KeyboardInterrupt after n municipalities (Ctrl-C)."""

    def __init__(self, n):
        self.n = n

    def __call__(self, stage, done, total):
        if stage.startswith("municipalities screened") and done >= self.n:
            raise KeyboardInterrupt


def test_resume_after_ctrl_c_recomputes_nothing(pref_shp, local_table, tmp_path):
    ck = tmp_path / "ck"
    first = Screening([pref_shp], options=FAST, workers=0, checkpoints=ck, progress=_Interrupt(2))
    with pytest.raises(KeyboardInterrupt):
        first.solve()
    assert len(first.computed) == 2
    second = Screening([pref_shp], options=FAST, workers=0, checkpoints=ck)
    table = second.solve()
    assert sorted(second.reused) == sorted(first.computed)
    assert not set(second.computed) & set(first.computed), "a municipality was computed twice"
    assert sorted(first.computed + second.computed) == sorted(local_table["muni_code"])
    pd.testing.assert_frame_equal(table, local_table)
    # other options never reuse these checkpoints
    other = Screening([pref_shp], options=ScreenOptions(k_min=2, k_max=3, restarts=2, seed=1), workers=0,
                      checkpoints=ck, progress=_Interrupt(1))
    with pytest.raises(KeyboardInterrupt):
        other.solve()
    assert other.reused == []


def test_cli_writes_every_output_with_japanese_headers(pref_shp, tmp_path, capsys):
    out = tmp_path / "screen"
    argv = ["screen", str(pref_shp), "--out", str(out), "--workers", "0", "--k", "2-3", "--restarts", "2"]
    assert main(argv) == 0
    said = capsys.readouterr().out
    assert "screened 5 municipalities (5 computed, 0 resumed" in said
    raw = (out / "screening.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and b"\r\n" in raw
    csv = pd.read_csv(out / "screening.csv", dtype=str, encoding="utf-8-sig")
    assert list(csv.columns) == list(COLUMNS.values())
    assert csv["市区町村コード"].str.len().eq(5).all()
    with zipfile.ZipFile(out / "screening.xlsx") as z:
        assert any(n.startswith("xl/worksheets/") for n in z.namelist())
    import geopandas as gpd

    g = gpd.read_file(out / "screening.gpkg")
    assert len(g) == 5 and g.crs.to_epsg() == 6668 and g.geometry.is_valid.all()
    page = (out / "screening.html").read_text(encoding="utf-8")
    assert "cdn" not in page.lower() and "https://unpkg" not in page
    data = json.loads(page.split('id="data">', 1)[1].split("</script>", 1)[0])
    assert len(data["features"]) == 5
    assert (out / "screening.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not (tmp_path / "screen.checkpoints").exists()     # removed after a complete run
    # an existing output is not replaced without --force; with it, the same bytes
    before = (out / "screening.csv").read_bytes()
    assert main(argv) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(argv + ["--force"]) == 0
    assert (out / "screening.csv").read_bytes() == before


def test_names_are_data_on_the_map(tmp_path):
    """A municipality named like a template or markup stays text."""
    g = synthetic_prefecture([24, 30], pref="03", seed=2)
    g["CITY_NAME"] = np.where(g["KEY_CODE"].str.startswith("03201"), "{{ 7*7 }}<script>alert(1)</script>市", "普通市")
    shp = write_estat_shapefile(g, tmp_path / "h27ka03.shp")
    out = tmp_path / "o"
    assert main(["screen", str(shp), "--out", str(out), "--workers", "0", "--k", "2-2", "--restarts", "1"]) == 0
    page = (out / "screening.html").read_text(encoding="utf-8")
    assert "<script>alert(1)" not in page and "49市" not in page
    data = json.loads(page.split('id="data">', 1)[1].split("</script>", 1)[0])
    assert "{{ 7*7 }}<script>alert(1)</script>市" in {f["properties"]["name"] for f in data["features"]}


@pytest.mark.parametrize("argv, words", [
    (["--k", "2-2000000000"], "--k"),
    (["--k", "1-3"], "--k"),
    (["--seed", "-1"], "--seed"),
    (["--min-area-km2", "nan"], "--min-area-km2"),
    (["--workers", "-3"], "--workers"),
])
def test_bad_options_are_clear_errors(pref_shp, tmp_path, capsys, argv, words):
    assert main(["screen", str(pref_shp), "--out", str(tmp_path / "x")] + argv) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err
    assert not (tmp_path / "x").exists()


def test_k_range_parsing():
    assert parse_k_range("2-14") == (2, 14) and parse_k_range("4") == (4, 4)
    with pytest.raises(UserError):
        parse_k_range("3-2")


def test_rank_table_orders_failures_last():
    rows = [dict(muni_code="01", name="a", status="failed", reason="x", population=1, outline_wkb=b""),
            dict(muni_code="02", name="b", status="ok", reason="", population=10, spared_per_event_mean=5.0,
                 spared_per_event_worst=1.0, outline_wkb=b""),
            dict(muni_code="03", name="c", status="ok", reason="", population=10, spared_per_event_mean=3.0,
                 spared_per_event_worst=2.0, outline_wkb=b"")]
    t = rank_table(rows)
    assert list(t["muni_code"]) == ["02", "03", "01"]
    assert list(t["rank_worst_L"][:2]) == [2, 1]


@pytest.mark.slow
def test_real_tottori_municipalities_split_once(shared_data):
    """The real 鳥取県 file: one read gives all 19 municipalities with their names."""
    from subdivide.io.townblocks import read_townblocks

    blocks, _ = read_townblocks(shared_data / "tottori_31_estat2015" / "h27ka31.shp")
    units = list(split_municipalities(blocks))
    assert len(units) == 19
    names = {u.code: u.name for u in units}
    assert names["31201"] == "鳥取市" and names["31384"] == "日吉津村"       # 西伯郡 日吉津村, named without its 郡
    assert sum(len(u.blocks) for u in units) == len(blocks)


@pytest.mark.slow
def test_killed_cli_run_resumes_where_it_stopped(pref_shp, tmp_path):
    """Ctrl-C (SIGINT) on the real command mid-way, then the same command again: the
    summary line counts what was resumed, and nothing is computed twice."""
    import signal
    import subprocess
    import sys

    out = tmp_path / "run"
    argv = [sys.executable, "-m", "subdivide", "screen", str(pref_shp), "--out", str(out), "--workers", "0",
            "--k", "2-3", "--restarts", "2", "--progress"]
    proc = subprocess.Popen(argv, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    done = 0
    for line in proc.stderr:
        if "municipalities screened" in line:
            done += 1
            if done == 2:
                proc.send_signal(signal.SIGINT)
                break
    proc.communicate(timeout=300)
    assert proc.returncode == 130
    assert not out.exists()
    ck = list((tmp_path / "run.checkpoints").rglob("*.json"))
    assert len(ck) >= 2
    res = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    n_done = len(ck)
    assert f"({len(SIZES) - n_done} computed, {n_done} resumed from checkpoints)" in res.stdout
