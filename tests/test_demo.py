"""`subdivide demo`: the whole pipeline on the bundled sample, end to end."""
import hashlib
import json

import pytest

from subdivide.cli.main import main


def _digests(folder):
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.slow
def test_demo_runs_every_stage_and_is_reproducible(sample_shp, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(["demo", "--out", str(a), "--quiet"]) == 0
    summary = json.loads((a / "summary.json").read_text(encoding="utf-8"))
    assert summary["townblocks"] == {"records": 479, "blocks": 463, "population": 97702, "households": 33799}
    assert [r["name"] for r in summary["plan"]] == ["花巻地域", "大迫地域", "石鳥谷地域", "東和地域"]
    assert summary["validation_status"] == 0
    for rel in summary["outputs"].values():
        assert (a / rel).is_file(), rel
    # an existing output is never replaced without --force, and is left as it was
    before = _digests(a)
    capsys.readouterr()
    assert main(["demo", "--out", str(a), "--quiet"]) == 2
    assert "--force" in capsys.readouterr().err
    assert _digests(a) == before
    # same inputs, same options → byte-identical outputs (the registry records wall-clock times)
    assert main(["demo", "--out", str(b), "--quiet"]) == 0
    da, db = _digests(a), _digests(b)
    assert da.keys() == db.keys()
    differ = sorted(k for k in da if da[k] != db[k] and not k.startswith("06_registry/"))
    assert differ == []
