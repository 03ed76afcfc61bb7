"""Zonal means of hazard rasters per town-block (subdivide.model.hazard)."""
from __future__ import annotations

import numpy as np
import pytest
import rasterio
import shapely
from rasterio import mask as rmask

from subdivide.core.errors import UserError
from subdivide.model.hazard import (SYNTHETIC_TAG, parse_raster_option, write_synthetic_hazard_raster, zonal_mean)


@pytest.fixture(scope="module")
def blocks(synthetic_blocks):
    return synthetic_blocks(200, seed=3)


@pytest.fixture(scope="module")
def raster(blocks, tmp_path_factory):
    b = blocks.total_bounds
    path = tmp_path_factory.mktemp("haz") / "flood.tif"
    return write_synthetic_hazard_raster(path, (b[0] - 500, b[1] - 500, b[2] + 500, b[3] + 500), blocks.crs,
                                         resolution_m=200, seed=5)


def test_zonal_mean_matches_rasterio_mask(blocks, raster):
    values, report = zonal_mean(blocks, raster)
    assert report.n_missing == 0 and len(values) == len(blocks)
    with rasterio.open(raster) as src:
        assert src.tags()["DESCRIPTION"] == SYNTHETIC_TAG
        big = np.argsort(-blocks.geometry.area.to_numpy())[:5]
        for i in big:
            arr, _ = rmask.mask(src, [blocks.geometry.iloc[i]], crop=True, filled=False)
            assert values.iloc[i] == pytest.approx(float(arr.mean()), rel=1e-6)


def test_small_blocks_take_the_pixel_under_their_point(blocks, tmp_path):
    b = blocks.total_bounds
    coarse = write_synthetic_hazard_raster(tmp_path / "coarse.tif", (b[0], b[1], b[2], b[3]), blocks.crs,
                                           resolution_m=3000, seed=1)
    values, report = zonal_mean(blocks, coarse)
    assert report.n_point_sampled > 0 and np.isfinite(values).all()
    with rasterio.open(coarse) as src:
        small = values.index[blocks.geometry.area < 3000 ** 2 / 4][:3]
        pts = shapely.point_on_surface(blocks.geometry.loc[small].values)
        sampled = [v[0] for v in src.sample(zip(shapely.get_x(pts), shapely.get_y(pts)))]
    # blocks without a pixel centre take the pixel under their representative point
    if report.n_point_sampled:
        hit = [i for i, s in zip(small, sampled) if values[i] == pytest.approx(s)]
        assert hit


def test_nodata_and_reprojection(blocks, tmp_path):
    b = blocks.total_bounds
    path = write_synthetic_hazard_raster(tmp_path / "nd.tif", (b[0], b[1], b[2], b[3]), blocks.crs,
                                         resolution_m=250, seed=2, nodata_share=0.3)
    values, report = zonal_mean(blocks, path)
    assert np.nanmin(values) >= 0          # nodata (-9999) never averaged in
    ll = blocks.to_crs("EPSG:6668")
    again, _ = zonal_mean(ll, path)        # blocks in another CRS are reprojected
    np.testing.assert_allclose(again.to_numpy(), values.to_numpy(), equal_nan=True)
    assert report.n_missing == int(np.isnan(values).sum())


def test_raster_writer_is_deterministic(blocks, tmp_path):
    b = blocks.total_bounds
    a = write_synthetic_hazard_raster(tmp_path / "a.tif", tuple(b), blocks.crs, seed=9, resolution_m=500)
    c = write_synthetic_hazard_raster(tmp_path / "c.tif", tuple(b), blocks.crs, seed=9, resolution_m=500)
    d = write_synthetic_hazard_raster(tmp_path / "d.tif", tuple(b), blocks.crs, seed=10, resolution_m=500)
    assert a.read_bytes() == c.read_bytes() != d.read_bytes()


def test_bad_rasters_refused(blocks, tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        zonal_mean(blocks, tmp_path / "none.tif")
    (tmp_path / "x.tif").write_text("not a raster")
    with pytest.raises(UserError, match="not a raster"):
        zonal_mean(blocks, tmp_path / "x.tif")
    far = write_synthetic_hazard_raster(tmp_path / "far.tif", (0, 0, 1000, 1000), blocks.crs, resolution_m=100)
    with pytest.raises(UserError, match="does not cover"):
        zonal_mean(blocks, far)
    assert parse_raster_option("flood=a/b.tif")[0] == "flood"
    with pytest.raises(UserError):
        parse_raster_option("=x.tif")


def test_raster_covering_only_a_corner_is_refused(blocks, tmp_path):
    """A raster that leaves most town-blocks without a value does not cover the municipality."""
    b = blocks.total_bounds
    w, h = b[2] - b[0], b[3] - b[1]
    corner = (b[0], b[1], b[0] + 0.2 * w, b[1] + 0.2 * h)
    path = write_synthetic_hazard_raster(tmp_path / "corner.tif", corner, blocks.crs, resolution_m=100, seed=1)
    with pytest.raises(UserError, match="does not cover") as ei:
        zonal_mean(blocks, path)
    assert ei.value.where == str(path)
