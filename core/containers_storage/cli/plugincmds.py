"""``drivers``: installed graph drivers and plugins, with whether each driver can run here.

Every installed entry point gets a row, also one that cannot be loaded (its PROBE column
says why) or whose driver name another distribution offers too; the command still exits 0.
Not in upstream's tool; it adds a command without changing any other.
"""

from __future__ import annotations

from .context import Context
from .errtext import error_text

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..plugins import EntryStatus, PluginHost


def _one_line(text: str) -> str:
    """One table row per driver: a tool's multi-line stderr becomes one line."""
    return "; ".join(line.strip() for line in text.splitlines() if line.strip())


def _driver_state(ctx: Context, host: PluginHost, status: EntryStatus) -> str:
    from ..drivers.select import driver_config, driver_root, home_name
    from ..errors import DuplicateDriver

    if status.error:
        return f"cannot load: {_one_line(status.error)}"
    name = status.entry_point.name
    try:
        host.refuse_duplicate(name)
    except DuplicateDriver as exc:
        return f"refused: {exc}"
    try:
        info = status.infos[0]
        cls = host.driver_class(info)
        cls.probe(driver_config(ctx.options, home_name(info, driver_root(ctx.options))))
    except Exception as exc:
        return _one_line(error_text(exc))
    return "ok"


def installed(ctx: Context) -> list[dict[str, str]]:
    """One row per installed driver entry point and plugin, with its probe result (also
    ``info``'s plugin section)."""
    from ..plugins import DRIVER_GROUP, PLUGIN_GROUP, get_plugin_host

    host = get_plugin_host()
    rows = []
    for status in host.driver_entries():
        ep = status.entry_point
        rows.append({
            "name": ep.name,
            "kind": "driver",
            "module": ep.value,
            "distribution": ep.distribution,
            "version": ep.version,
            "probe": _driver_state(ctx, host, status),
        })
    host.load_external_plugins()
    for record in host.installed():
        if record.group == DRIVER_GROUP:
            continue
        error = host.plugin_error(record) if record.group == PLUGIN_GROUP else ""
        rows.append({
            "name": record.name,
            "kind": "builtin" if record.group == "builtin" else "plugin",
            "module": record.module,
            "distribution": record.distribution,
            "version": record.version,
            "probe": f"cannot load: {_one_line(error)}" if error else "",
        })
    return rows


def drivers(ctx: Context) -> int:
    rows = installed(ctx)
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
