"""The package's shape: layers import only downward, and `subdivide --help` stays light.

docs/architecture.md describes the layers; this test is what keeps them true.
"""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "subdivide"

#: the layers, lowest first (docs/architecture.md); a module may import its own layer and
#: any layer below it, never one above
LAYERS = ("core", "io", "model", "make", "analysis", "carrier", "present", "cli")
#: aside the stack: test helpers may use everything below the CLI, nothing may use them
ASIDE = {"testing": "present"}


def _layer_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "subdivide" or len(parts) < 2:
        return None
    return parts[1] if parts[1] in LAYERS or parts[1] in ASIDE else None


def _rank(layer: str) -> int:
    return LAYERS.index(ASIDE.get(layer, layer))


def _imports(path: Path) -> list[tuple[int, str]]:
    """Every subdivide module a file imports, at any depth (function-level too)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    rel = path.relative_to(PKG.parent).with_suffix("")
    package = list(rel.parts[:-1]) if rel.name != "__init__" else list(rel.parts[:-1])
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name.startswith("subdivide")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if mod.startswith("subdivide"):
                if mod == "subdivide" or mod.count(".") == 1 and mod.split(".")[1] in LAYERS:
                    out += [(node.lineno, f"{mod}.{a.name}") for a in node.names]
                else:
                    out.append((node.lineno, mod))
    return out


def _modules():
    return sorted(p for p in PKG.rglob("*.py"))


def test_every_module_sits_in_a_layer():
    loose = [p.name for p in PKG.glob("*.py") if p.name not in ("__init__.py", "__main__.py")]
    assert loose == [], f"modules outside the layers: {loose}"
    folders = sorted(p.name for p in PKG.iterdir() if p.is_dir() and (p / "__init__.py").exists())
    assert set(folders) <= set(LAYERS) | set(ASIDE), folders


def test_layers_import_only_downward():
    bad = []
    for path in _modules():
        mine = _layer_of(".".join(path.relative_to(PKG.parent).with_suffix("").parts))
        if mine is None:
            continue
        for line, mod in _imports(path):
            theirs = _layer_of(mod)
            if theirs is None:
                continue
            if theirs in ASIDE and mine not in ASIDE:
                bad.append(f"{path.relative_to(PKG.parent)}:{line} imports test helper {mod}")
            elif _rank(theirs) > _rank(mine):
                bad.append(f"{path.relative_to(PKG.parent)}:{line} ({mine}) imports {mod} ({theirs})")
    assert bad == [], "upward imports:\n" + "\n".join(bad)


def test_the_checker_sees_an_upward_import(tmp_path):
    """The rule above can fail: a core module importing the CLI is caught."""
    fake = PKG / "core" / "_upward_probe.py"
    try:
        fake.write_text("def f():\n    from subdivide.cli.main import main\n", encoding="utf-8")
        with pytest.raises(AssertionError, match="_upward_probe"):
            test_layers_import_only_downward()
    finally:
        fake.unlink()


HEAVY = ("geopandas", "shapely", "pyogrio", "folium", "matplotlib", "pandas", "rasterio", "scipy", "pyproj")


@pytest.mark.parametrize("argv", [["--help"], ["plan", "--help"], ["--version"]])
def test_help_imports_no_heavy_library(argv):
    """In the manner of geopandas' test_no_additional_imports: the command list and a
    command's --help load none of the geometry, table or drawing libraries."""
    code = (
        "import sys, io, contextlib\n"
        "from subdivide.cli.main import main\n"
        "buf = io.StringIO()\n"
        "with contextlib.redirect_stdout(buf):\n"
        f"    try:\n        main({argv!r})\n    except SystemExit:\n        pass\n"
        f"heavy = sorted(m for m in {HEAVY!r} if m in sys.modules)\n"
        "print(','.join(heavy))\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip().splitlines()[-1:] in ([""], []), f"--help loaded: {res.stdout.strip()}"


def test_every_rule_id_in_the_code_is_in_the_one_vocabulary():
    """A finding's id comes from subdivide/core/rules.py, wherever it is raised (plan,
    planner, validator, registry): no second vocabulary, no id that is not listed."""
    import re

    from subdivide.core.rules import RULES

    pat = re.compile(r"""(?:\bfinding|\bFinding|\.add)\(\s*["']([A-Z][A-Z0-9]*(?:-[A-Z0-9]+)+)["']""")
    used = {}
    for path in _modules():
        if "messages" in path.parts:       # the message linter's L01–L45 are message rules, not plan rules
            continue
        for m in pat.finditer(path.read_text(encoding="utf-8")):
            used.setdefault(m.group(1), str(path.relative_to(PKG.parent)))
    unknown = {r: where for r, where in used.items() if r not in RULES}
    assert unknown == {}, f"rule ids missing from subdivide/core/rules.py: {unknown}"
    assert len(used) > 40


def test_plan_and_validator_use_the_same_ids():
    """The ids a plan raises are the validator's (issue 11: PLAN-CONTIGUITY vs CONTIGUITY)."""
    from subdivide.carrier.validation import RULES as VALIDATOR
    from subdivide.core.rules import RULES

    for rid in ("CONTIGUITY", "LIMIT-SUBAREAS", "NAME-FORMAT", "NAME-DUPLICATE", "SUBAREA-EMPTY", "SPILL-CORE"):
        assert rid in RULES and rid in VALIDATOR
    assert not [r for r in RULES if r.startswith("PLAN-") and r != "PLAN-SCHEMA" and r != "PLAN-ISLAND-FLAGGED"]
