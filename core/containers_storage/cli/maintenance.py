"""Store maintenance: ``check``, ``gc``, ``shutdown``, ``wipe``, ``status``, ``version``
(cli.md §5.7)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .context import Context
from .errtext import error_text
from .flags import value_error
from .gofmt import go_list, parse_duration

#: (JSON key, text label, report attribute) of the check report's sections, in order
_SECTIONS = (
    ("Layers", "layer", "layers"),
    ("ROLayers", "read-only layer", "ro_layers"),
    ("Images", "image", "images"),
    ("ROImages", "read-only image", "ro_images"),
    ("Containers", "container", "containers"),
)


def _shutdown_error(ctx: Context, force: bool) -> str:
    """Shut the store down; the error text ("" when none) as upstream's Shutdown returns."""
    from ..errors import LayerUsedByContainer

    try:
        still = ctx.store.shutdown(force)
    except Exception as exc:
        return error_text(exc)
    return str(LayerUsedByContainer("a layer is mounted")) if still else ""


def _final_shutdown(ctx: Context) -> None:
    """``check`` and ``gc`` unmount everything when done; errors do not change the exit."""
    text = _shutdown_error(ctx, True)
    if text:
        ctx.console.err(f"shutdown: {text}\n")


def check(ctx: Context) -> int:
    """Checks, optionally repairs, then always shuts down with force (before the command's
    own error is printed, as upstream's deferred shutdown does).

    Store interface used: ``CheckOptions.everything()``/``CheckOptions.most()`` (upstream's
    CheckEverything/CheckMost, a dataclass with ``layer_unreferenced_maximum_age`` in
    seconds), ``Store.check(options)`` returning a report with
    ``layers``, ``ro_layers``, ``images``, ``ro_images``, ``containers`` mappings of ID to
    errors, and ``Store.repair(report, RepairOptions(remove_containers=...))`` returning
    the errors it met.
    """
    try:
        status, error = _check(ctx)
    finally:
        _final_shutdown(ctx)
    if error:
        ctx.console.err(error + "\n")
    return status


def _check(ctx: Context) -> tuple[int, str]:
    from ..store import CheckOptions, RepairOptions
    from ..structs import replace

    options = CheckOptions.most() if ctx.flag("quick") else CheckOptions.everything()
    max_age = str(ctx.flag("max") or "")
    if max_age:
        try:
            options = replace(options, layer_unreferenced_maximum_age=parse_duration(max_age) / 1e9)
        except ValueError as exc:
            return 1, value_error("max", max_age, exc)
    force = bool(ctx.flag("force"))
    report = ctx.store.check(options)
    sections: list[tuple[str, str, Mapping[str, Sequence[BaseException]]]] = [
        (key, label, getattr(report, attr)) for key, label, attr in _SECTIONS
    ]
    if ctx.json:
        ctx.console.json({key: {i: [{} for _ in errs] for i, errs in sorted(items.items())}
                          for key, _, items in sections})
    else:
        out: list[str] = []
        for _, label, items in sections:
            for item_id, errs in items.items():
                if errs:
                    out.append(f"{label} {item_id}:\n")
                out.extend(f" {error_text(e)}\n" for e in errs)
        ctx.console.out("".join(out))
    layers, ro_layers, images, ro_images, containers = (len(items) for _, _, items in sections)
    if not (force or ctx.flag("repair")):
        if layers or ro_layers or images or ro_images or containers:
            return 1, (f"{layers} layer errors, {ro_layers} read-only layer errors, {images} image errors, "
                       f"{ro_images} read-only image errors, {containers} container errors")
        return 0, ""
    failures = ctx.store.repair(report, RepairOptions(remove_containers=force))
    if failures:
        if ctx.json:
            ctx.console.json([{} for _ in failures])
        else:
            ctx.console.err("".join(f"{error_text(e)}\n" for e in failures))
        return 1, error_text(failures[0])
    if ro_layers or ro_images or (containers and not force):
        text = f"{ro_layers} read-only layer errors, {ro_images} read-only image errors"
        return 1, text if force else f"{text}, {containers} container errors"
    return 0, ""


def gc(ctx: Context) -> int:
    try:
        ctx.store.garbage_collect()
        if ctx.json:
            ctx.console.json("")
    finally:
        _final_shutdown(ctx)
    return 0


def _report_action(ctx: Context, action: str, text: str) -> int:
    """``""`` (or the error as ``{}``) in JSON; the error as ``<action>: <err>`` in text."""
    if ctx.json:
        ctx.console.json({} if text else "")
    elif text:
        ctx.console.err(f"{action}: {text}\n")
    return 1 if text else 0


def shutdown(ctx: Context) -> int:
    return _report_action(ctx, "shutdown", _shutdown_error(ctx, bool(ctx.flag("force"))))


def wipe(ctx: Context) -> int:
    try:
        ctx.store.wipe()
        text = ""
    except Exception as exc:
        text = error_text(exc)
    return _report_action(ctx, "wipe", text)


def status(ctx: Context) -> int:
    store = ctx.store
    pairs = [
        ("Root", store.graph_root),
        ("Run Root", store.run_root),
        ("Driver Name", store.graph_driver_name),
        ("Driver Options", go_list(store.graph_options)),
        *store.status(),
    ]
    if ctx.json:
        ctx.console.json([[k, v] for k, v in pairs])
    else:
        ctx.console.err("".join(f"{k}: {v}\n" for k, v in pairs))
    return 0


def version(ctx: Context) -> int:
    """Like ``status``, the text goes to standard error."""
    pairs = ctx.store.version()
    if ctx.json:
        ctx.console.json([[k, v] for k, v in pairs])
    else:
        ctx.console.err("".join(f"{k}: {v}\n" for k, v in pairs))
    return 0
