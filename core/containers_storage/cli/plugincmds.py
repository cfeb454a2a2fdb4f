"""``drivers``: installed graph drivers and plugins, with whether each driver can run here.

Not in upstream's tool; it adds a command without changing any other.
"""

from __future__ import annotations

from .context import Context
from .errtext import error_text


def _probe(ctx: Context, name: str) -> str:
    from ..drivers.select import driver_config
    from ..plugins import get_plugin_host

    info = get_plugin_host().driver_info(name)
    if info is None:
        return "not loadable"
    try:
        cls = info.load()
        cls.probe(driver_config(ctx.options, name))
    except Exception as exc:
        # one table row per driver: a tool's multi-line stderr becomes one line
        return "; ".join(line.strip() for line in error_text(exc).splitlines() if line.strip())
    return "ok"


def drivers(ctx: Context) -> int:
    from ..plugins import DRIVER_GROUP, get_plugin_host

    rows = []
    for record in get_plugin_host().installed():
        kind = {DRIVER_GROUP: "driver", "builtin": "builtin"}.get(record.group, "plugin")
        probe = _probe(ctx, record.name) if record.group == DRIVER_GROUP else ""
        rows.append({
            "name": record.name,
            "kind": kind,
            "module": record.module,
            "distribution": record.distribution,
            "version": record.version,
            "probe": probe,
        })
    if ctx.json:
        ctx.console.json(rows)
        return 0
    header = ("NAME", "KIND", "DISTRIBUTION", "VERSION", "PROBE")
    table = [header] + [
        (r["name"], r["kind"], r["distribution"], r["version"] or "-", r["probe"] or "-") for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header) - 1)]
    ctx.console.out("".join(
        "   ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])) + "   " + row[-1] + "\n"
        for row in table
    ))
    return 0
