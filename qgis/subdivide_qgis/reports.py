"""HTML reports of a run (no QGIS import here).

A report shows what the command printed, its warnings, and the CSV tables it wrote. Every
name is data: it is escaped, never treated as markup. The same run gives the same bytes
(no timestamps).
"""
from __future__ import annotations

import csv
import html
import json
from collections.abc import Iterable
from pathlib import Path

_STYLE = """body { font-family: "Yu Gothic UI", "Meiryo", "Noto Sans CJK JP", sans-serif; margin: 1.5em; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 13px; }
th, td { border: 1px solid #bbb; padding: 2px 6px; text-align: right; }
th { background: #f0f0f0; } td.t { text-align: left; }
pre { background: #f7f7f7; padding: 0.6em; white-space: pre-wrap; }
.warn { color: #8a4b00; } code { font-size: 12px; }"""

#: rows of a table shown in full; longer tables are cut (the CSV has them all)
MAX_ROWS = 500


def _esc(x) -> str:
    return html.escape("" if x is None else str(x), quote=True)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def csv_table(path, caption: str | None = None, encoding: str = "utf-8-sig") -> str:
    """An HTML table of a CSV file (numbers right-aligned, text left)."""
    path = Path(path)
    with open(path, encoding=encoding, newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        return ""
    head, body = rows[0], rows[1:]
    out = [f"<h3>{_esc(caption or path.name)}</h3>", "<table>",
           "<tr>" + "".join(f"<th>{_esc(h)}</th>" for h in head) + "</tr>"]
    for row in body[:MAX_ROWS]:
        out.append("<tr>" + "".join(f"<td>{_esc(c)}</td>" if _is_number(c) else f'<td class="t">{_esc(c)}</td>'
                                    for c in row) + "</tr>")
    out.append("</table>")
    if len(body) > MAX_ROWS:
        out.append(f"<p>… {len(body) - MAX_ROWS} more rows in {_esc(path.name)}</p>")
    return "\n".join(out)


def mapping_table(data: dict, caption: str) -> str:
    """A two-column table of a (flattened) JSON object."""
    rows = []

    def walk(prefix, value):
        if isinstance(value, dict):
            for k in sorted(value):
                walk(f"{prefix}.{k}" if prefix else str(k), value[k])
        else:
            if isinstance(value, list):
                value = ", ".join(json.dumps(v, ensure_ascii=False) if isinstance(v, (dict, list)) else str(v)
                                  for v in value)
            rows.append((prefix, value))

    walk("", data)
    return "\n".join([f"<h3>{_esc(caption)}</h3>", "<table>"]
                     + [f'<tr><td class="t">{_esc(k)}</td><td class="t">{_esc(v)}</td></tr>' for k, v in rows]
                     + ["</table>"])


def html_report(title: str, *, command: Iterable[str] = (), text: str = "", warnings: Iterable[str] = (),
                sections: Iterable[str] = ()) -> str:
    """A self-contained HTML page. ``sections`` are HTML fragments from :func:`csv_table` /
    :func:`mapping_table` (already escaped)."""
    parts = ["<!DOCTYPE html>", '<html lang="ja"><head><meta charset="utf-8">', f"<title>{_esc(title)}</title>",
             f"<style>{_STYLE}</style></head><body>", f"<h1>{_esc(title)}</h1>"]
    cmd = list(command)
    if cmd:
        parts.append("<p>command: <code>" + _esc(" ".join(_quote(a) for a in cmd)) + "</code></p>")
    warn = list(warnings)
    if warn:
        parts.append("<h2>warnings / 警告</h2><ul>" + "".join(f'<li class="warn">{_esc(w)}</li>' for w in warn)
                     + "</ul>")
    if text.strip():
        parts.append(f"<h2>output / 出力</h2><pre>{_esc(text.rstrip())}</pre>")
    parts.extend(sections)
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _quote(arg: str) -> str:
    arg = str(arg)
    return f'"{arg}"' if (not arg or any(c in arg for c in ' \t"\'&|<>;')) else arg


def write_text(path, text: str) -> None:
    Path(path).write_text(text, encoding="utf-8", newline="\n")
