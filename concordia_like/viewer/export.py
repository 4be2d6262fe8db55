"""The viewer as a static site: the same page and scripts, with what the API would
answer written beside them as script files (a browser opening a page from disk may
load scripts but not fetch JSON), so it opens from `file://` with no server.

What needs the server is left out: memories are listed newest first, not scored for a
typed query (that needs the run's embedder)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from concordia_like.errors import ConcordiaError
from concordia_like.files import write_atomic
from concordia_like.viewer.app import STATIC, Catalog
from concordia_like.viewer.feed import feed
from concordia_like.viewer.residents import memories, resident

#: where the page's template takes the data's script tags
DATA_MARK = "<!--data-->"


def _script(name: str, data: Any) -> str:
    body = json.dumps(data, ensure_ascii=False, allow_nan=False, default=str)
    # a script file's text ends at "</script" only inside HTML, but keep "<" out anyway
    body = body.replace("<", "\\u003c")
    return f"window.VIEW_DATA = window.VIEW_DATA || {{runs: {{}}}};\n{name} = {body};\n"


def export_site(catalog: Catalog, out: Path) -> Path:
    """Write the site into `out` (created; what it held of an earlier export is
    replaced) and return its page."""
    out.mkdir(parents=True, exist_ok=True)
    shutil.copytree(STATIC, out / "static", dirs_exist_ok=True)
    (out / "data").mkdir(exist_ok=True)
    index = {**catalog.index(), "live": False, "static": True}
    files = ["data/index.js"]
    write_atomic(out / "data" / "index.js", _script("window.VIEW_DATA.index", index))
    if catalog.experiment is not None:
        files.append("data/experiment.js")
        write_atomic(
            out / "data" / "experiment.js",
            _script("window.VIEW_DATA.experiment", catalog.experiment.data()),
        )
    for i, run in enumerate(index["runs"]):
        view = catalog.view(run["id"])
        head = view.head()
        people: dict[str, Any] = {}
        remembered: dict[str, Any] = {}
        for name in head["residents"]:
            try:
                people[name] = resident(view, name)
                remembered[name] = memories(view, name)
            except ConcordiaError:
                continue
        data = {
            "head": head,
            "positions": view.positions(),
            "events": list(view.all_events()),
            "threads": view.threads(),
            "usage": view.usage(),
            "feed": feed(view),
            "residents": people,
            "memories": remembered,
        }
        name = f"data/run-{i}.js"
        files.append(name)
        write_atomic(out / name, _script(f"window.VIEW_DATA.runs[{json.dumps(run['id'])}]", data))
    tags = "\n".join(f'<script src="{f}"></script>' for f in files)
    page = (STATIC / "index.html").read_text().replace(DATA_MARK, tags)
    write_atomic(out / "index.html", page)
    return out / "index.html"
