"""The national registry: limits enforced atomically, history, audit, schema version."""
from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import sqlite3

import pytest

from subdivide import MAX_MUNICIPALITIES
from subdivide.cli.main import main
from subdivide.core.codes import with_check_digit
from subdivide.core.errors import UserError
from subdivide.carrier.registry import SCHEMA_VERSION, Registry, RegistryRefused, default_db_path

#: 40 distinct, well-formed municipality codes (prefectures 01–40, city numbers 201+)
CODES = [f"{p:02d}{200 + p:03d}" for p in range(1, 41)]


def record(code: str, n: int = 3, tag: str = "") -> dict:
    return {
        "muni_code": code, "n_townblocks": 10 * n, "population": 1000 * n,
        "package_sha256": hashlib.sha256(f"{code}{tag}".encode()).hexdigest(), "manifest": {"tag": tag},
        "subareas": [{"subarea": i, "code": f"{code}{i:02d}", "name": f"第{i}地域", "display_order": i,
                      "n_blocks": 10, "population": 1000, "area_km2": 150.0} for i in range(1, n + 1)],
    }


def test_register_list_show_history_withdraw(tmp_path):
    reg = Registry(tmp_path / "r.sqlite")
    assert reg.schema_version == SCHEMA_VERSION
    reg.register_record({**record(CODES[0]), "muni_name": "花巻市"}, actor="alice")
    out = reg.register_record(record(CODES[0], n=4, tag="v2"), actor="bob")     # supersedes
    assert out["active"]["n_subareas"] == 4 and out["active"]["muni_name"] == "花巻市"
    assert [r["status"] for r in out["registrations"]] == ["active", "superseded"]
    assert [s["code"] for s in out["active"]["subareas"]] == [f"{CODES[0]}{i:02d}" for i in range(1, 5)]
    assert reg.active_count() == 1
    with pytest.raises(RegistryRefused, match="already the active registration"):
        reg.register_record(record(CODES[0], n=4, tag="v2"))
    w = reg.withdraw(with_check_digit(CODES[0]), actor="carol", reason="plan revised")   # 6-digit form accepted
    assert w["status"] == "withdrawn" and reg.active_count() == 0
    with pytest.raises(RegistryRefused, match="no active subdivision"):
        reg.withdraw(CODES[0])
    hist = reg.history(CODES[0])
    assert [(h["action"], h["actor"]) for h in hist] == [("register", "alice"), ("supersede", "bob"),
                                                         ("withdraw", "carol")]
    assert hist[2]["detail"] == {"reason": "plan revised"}
    assert [h["action"] for h in reg.history()][0] == "migrate"
    assert len(reg.list(include_ended=True)) == 2 and reg.list() == []


def test_limits_refused_with_a_clear_message(tmp_path):
    reg = Registry(tmp_path / "r.sqlite")
    with pytest.raises(RegistryRefused, match="LIMIT-SUBAREAS: 15 sub-areas"):
        reg.register_record(record(CODES[0], n=15))
    for code in CODES[:MAX_MUNICIPALITIES]:
        reg.register_record(record(code))
    with pytest.raises(RegistryRefused, match="LIMIT-MUNICIPALITIES: 25 municipalities") as exc:
        reg.register_record(record(CODES[25]))
    assert exc.value.exit_status == 1 and "withdraw" in exc.value.fix
    # an active municipality may still replace its own plan at the limit
    reg.register_record(record(CODES[3], n=5, tag="v2"))
    # withdrawing frees a place
    reg.withdraw(CODES[0])
    reg.register_record(record(CODES[25]))
    assert reg.active_count() == MAX_MUNICIPALITIES
    assert sorted(r["muni_code"] for r in reg.list()) == sorted(CODES[1:26])


def test_triggers_guard_the_limits_against_direct_writes(tmp_path):
    db = tmp_path / "r.sqlite"
    reg = Registry(db)
    for code in CODES[:MAX_MUNICIPALITIES]:
        reg.register_record(record(code, n=14))
    con = sqlite3.connect(db)
    with pytest.raises(sqlite3.IntegrityError, match="LIMIT-MUNICIPALITIES"):
        con.execute("INSERT INTO registrations (muni_code, n_subareas, n_townblocks, package_sha256, manifest, "
                    "status, registered_at) VALUES ('47201', 1, 1, 'x', '{}', 'active', 'now')")
    rid = con.execute("SELECT id FROM registrations LIMIT 1").fetchone()[0]
    with pytest.raises(sqlite3.IntegrityError, match="LIMIT-SUBAREAS"):
        con.execute("INSERT INTO subareas VALUES (?, 99, 'x', 'x', 15, 0, 0, 0)", (rid,))
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        con.execute("UPDATE audit SET actor = 'mallory'")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        con.execute("DELETE FROM audit")
    with pytest.raises(sqlite3.IntegrityError):   # one active registration per municipality
        con.execute("UPDATE registrations SET status = 'active' WHERE id = ?", (rid,))
        con.execute("INSERT INTO registrations (muni_code, n_subareas, n_townblocks, package_sha256, manifest, "
                    "status, registered_at) SELECT muni_code, 1, 1, 'y', '{}', 'active', 'now' FROM registrations "
                    "WHERE id = ?", (rid,))
    con.close()


def _register_worker(db, code, tag, barrier, queue):
    barrier.wait()
    try:
        Registry(db).register_record(record(code, tag=tag), actor=f"proc-{code}{tag}")
        queue.put((code, tag, "ok"))
    except RegistryRefused as exc:
        queue.put((code, tag, "refused: " + exc.what))
    except BaseException as exc:  # reported to the test, which fails on it
        queue.put((code, tag, f"crash: {exc!r}"))


def _run_parallel(db, jobs):
    ctx = mp.get_context("fork")
    barrier, queue = ctx.Barrier(len(jobs)), ctx.Queue()
    procs = [ctx.Process(target=_register_worker, args=(db, code, tag, barrier, queue)) for code, tag in jobs]
    for p in procs:
        p.start()
    results = [queue.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    return results


def test_forty_parallel_registrations_never_exceed_25(tmp_path):
    db = tmp_path / "fresh.sqlite"      # created and migrated concurrently as well
    results = _run_parallel(db, [(code, "") for code in CODES])
    ok = sorted(c for c, _, r in results if r == "ok")
    refused = [r for _, _, r in results if r.startswith("refused")]
    crashes = [r for _, _, r in results if r.startswith("crash")]
    assert crashes == []
    assert len(ok) == MAX_MUNICIPALITIES and len(refused) == len(CODES) - MAX_MUNICIPALITIES
    assert all("LIMIT-MUNICIPALITIES" in r for r in refused)
    reg = Registry(db)
    assert sorted(r["muni_code"] for r in reg.list()) == ok
    hist = reg.history()
    assert sum(h["action"] == "register" for h in hist) == MAX_MUNICIPALITIES
    assert sum(h["action"] == "migrate" for h in hist) == 1
    # the audit's running count never passed the limit
    assert max(h["detail"]["active_after"] for h in hist if h["action"] == "register") == MAX_MUNICIPALITIES


def test_parallel_resubmissions_of_one_municipality_keep_one_active(tmp_path):
    db = tmp_path / "r.sqlite"
    Registry(db).register_record(record(CODES[0]))
    results = _run_parallel(db, [(CODES[0], f"v{i}") for i in range(12)])
    assert all(r == "ok" for _, _, r in results)
    shown = Registry(db).show(CODES[0])
    assert [r["status"] for r in shown["registrations"]].count("active") == 1
    assert len(shown["registrations"]) == 13


def test_schema_version_and_bad_files(tmp_path, monkeypatch):
    db = tmp_path / "r.sqlite"
    Registry(db)
    con = sqlite3.connect(db)
    assert con.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
    con.execute("INSERT INTO schema_version VALUES (99, 'later', 'from the future')")
    con.commit()
    con.close()
    with pytest.raises(UserError, match="schema version 99"):
        Registry(db)
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not a database" * 100)
    with pytest.raises(UserError, match="not a usable SQLite database"):
        Registry(junk)
    monkeypatch.setenv("SUBDIVIDE_REGISTRY", str(tmp_path / "env.sqlite"))
    assert default_db_path() == tmp_path / "env.sqlite"
    assert default_db_path(tmp_path / "x.sqlite") == tmp_path / "x.sqlite"


def test_cli_refuses_a_package_that_does_not_validate(tmp_path, capsys):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "manifest.json").write_text("{}", encoding="utf-8")
    db = tmp_path / "r.sqlite"
    assert main(["registry", "--db", str(db), "register", str(bad)]) == 1
    assert "does not validate" in capsys.readouterr().err
    assert main(["registry", "--db", str(db), "--json", "list"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert main(["registry", "--db", str(db), "withdraw", "03205"]) == 1
    assert main(["registry", "--db", str(db), "show", "3205x"]) == 2


def test_refusal_lists_the_findings_in_the_users_language(tmp_path, capsys):
    """A refused package names the validator's errors, in Japanese under --lang ja: the
    rule id, then the finding's message translated (no English sentence left)."""
    import re

    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "manifest.json").write_text("{}", encoding="utf-8")
    db = tmp_path / "r.sqlite"
    assert main(["registry", "--lang", "ja", "--db", str(db), "register", str(bad)]) == 1
    err = capsys.readouterr().err
    rows = [line for line in err.splitlines() if re.match(r"  エラー +[A-Z]", line)]
    assert {"MANIFEST-INVALID", "GPKG-LAYERS"} <= {r.split()[1].rstrip(":") for r in rows}, err
    for r in rows:
        assert re.search(r"[ぁ-んァ-ヶ]", r) and not re.search(r"\b(is missing|lacks)\b", r), r
    assert main(["registry", "--db", str(db), "register", str(bad)]) == 1
    assert "  ERROR   MANIFEST-INVALID: manifest.json lacks required keys" in capsys.readouterr().err
    # a path in someone's manifest is data: an escape sequence is shown, never sent to the terminal
    (bad / "manifest.json").write_text(json.dumps(
        {"format": "subdivide-carrier-package", "format_version": 1, "tool_version": "0",
         "municipality": {"code": "03205"}, "outputs": [{"path": "\x1b[2Jx.csv", "sha256": "0" * 64, "size": 1}]}),
        encoding="utf-8")
    assert main(["registry", "--db", str(db), "register", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "MANIFEST-FILE-MISSING: \\x1b[2Jx.csv" in err and "\x1b" not in err


def test_cli_json_flag_after_the_action(tmp_path, capsys):
    db = tmp_path / "r.sqlite"
    assert main(["registry", "--db", str(db), "list", "--all", "--json"]) == 0   # the --help example
    assert json.loads(capsys.readouterr().out) == []
    assert main(["registry", "--db", str(db), "history", "--json"]) == 0
    assert [r["action"] for r in json.loads(capsys.readouterr().out)] == ["migrate"]
    assert main(["registry", "--db", str(db), "list"]) == 0
    assert "municipalities active" in capsys.readouterr().out


# ------------------------------------------------------------------ JST and display width
def _seconds_from_now(iso: str) -> float:
    from datetime import datetime, timezone

    return abs((datetime.fromisoformat(iso) - datetime.now(timezone.utc)).total_seconds())


def test_times_are_japan_standard_time_with_the_offset(tmp_path):
    db = tmp_path / "r.sqlite"
    reg = Registry(db)
    reg.register_record({**record(CODES[0]), "muni_name": "花巻市"})
    w = reg.withdraw(CODES[0])
    row = reg.list(include_ended=True)[0]
    for t in (row["registered_at"], row["ended_at"], w["ended_at"], *(h["at"] for h in reg.history())):
        assert t.endswith("+09:00") and _seconds_from_now(t) < 600, t
    con = sqlite3.connect(db)     # the stored text is JST too (what another program reads)
    stored = con.execute("SELECT registered_at FROM registrations").fetchone()[0]
    con.close()
    assert stored.endswith("+09:00")


def test_utc_times_of_an_older_registry_are_shown_in_jst(tmp_path):
    from datetime import datetime

    from subdivide.carrier.registry import to_jst

    db = tmp_path / "r.sqlite"
    reg = Registry(db)
    reg.register_record(record(CODES[1]))
    con = sqlite3.connect(db)     # as schema-1 registries wrote them before: UTC
    con.execute("UPDATE registrations SET registered_at = '2026-03-31T15:30:00+00:00'")
    con.commit()
    con.close()
    shown = reg.show(CODES[1])["active"]["registered_at"]
    assert shown == "2026-04-01T00:30:00+09:00"      # the next day in Japan
    assert datetime.fromisoformat(shown) == datetime.fromisoformat("2026-03-31T15:30:00+00:00")
    assert to_jst("2026-03-31T15:30:00") == shown     # no offset: read as UTC
    assert to_jst("not a time") == "not a time" and to_jst(None) is None


def test_list_columns_line_up_with_japanese_names(tmp_path, capsys):
    from subdivide.cli.commands.registry import fit
    from subdivide.core.i18n import display_width

    db = tmp_path / "r.sqlite"
    reg = Registry(db)
    names = ["花巻市", "南アルプス市", "X町", None, "ＡＢＣ村", "とても長い名前の市町村組合立特別区域市"]
    for code, name in zip(CODES, names):
        reg.register_record({**record(code), "muni_name": name})
    assert main(["registry", "--db", str(db), "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    table = lines[:len(names) + 1]
    # the id column ("#") ends at the same terminal column on every line, header included
    ends = [display_width(ln[:ln.index(f" {r} ") + len(f" {r}")]) for ln, r in
            zip(table, ["#", *range(1, len(names) + 1)])]
    assert len(set(ends)) == 1, table
    starts = {display_width(ln[:ln.index("active" if i else "status")]) for i, ln in enumerate(table)}
    assert len(starts) == 1, table
    assert "…" in table[-1] and "+09:00" in table[1]
    assert display_width(fit("花巻市", 10)) == 10 and display_width(fit("南アルプス市テスト市町村", 10)) == 10
    assert fit("a\x1b[31mb", 8) == "a[31mb  "       # a name is data: no escape sequence reaches the terminal


def test_show_lines_up_sub_area_names(tmp_path, capsys):
    from subdivide.core.i18n import display_width

    db = tmp_path / "r.sqlite"
    reg = Registry(db)
    rec = record(CODES[2], n=3)
    for s, name in zip(rec["subareas"], ["花巻地域", "東和地域", "石鳥谷地域"]):
        s["name"] = name
    reg.register_record({**rec, "muni_name": "花巻市"})
    assert main(["registry", "--db", str(db), "show", CODES[2]]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"{CODES[2]} 花巻市: active #1 since ") and out[0].endswith("+09:00")
    rows = [ln for ln in out if " blocks " in ln]
    assert len(rows) == 3 and len({display_width(ln[:ln.index(" blocks")]) for ln in rows}) == 1
