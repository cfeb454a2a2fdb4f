"""Store maintenance: ``check``, ``gc``, ``shutdown``, ``wipe``, ``status``, ``version``
(cli.md §5.7)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .context import Context
from .errtext import CommandError, error_text
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
    from ..store import CheckOptions, RepairOptions

    try:
        max_age = parse_duration(str(ctx.flag("max")))
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    force = bool(ctx.flag("force"))
    repair = force or bool(ctx.flag("repair"))
    quick = bool(ctx.flag("quick"))
    report = ctx.store.check(CheckOptions.everything(max_age_ns=max_age, quick=quick))
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
                out.append(f"{label} {item_id}:\n")
                out.extend(f" {error_text(e)}\n" for e in errs)
        ctx.console.out("".join(out))
    counts = [len(items) for _, _, items in sections]
    status = 0
    if not repair:
        if any(counts):
            ctx.console.err(
                f"{counts[0]} layer errors, {counts[1]} read-only layer errors, {counts[2]} image errors, "
                f"{counts[3]} read-only image errors, {counts[4]} container errors\n"
            )
            status = 1
    else:
        failures = ctx.store.repair(report, RepairOptions(remove_containers=force))
        if failures:
            if ctx.json:
                ctx.console.json([{} for _ in failures])
            else:
                ctx.console.err("".join(f"{error_text(e)}\n" for e in failures))
            status = 1
        elif counts[1] or counts[3] or (counts[4] and not force):
            text = f"{counts[1]} read-only layer errors, {counts[3]} read-only image errors"
            if not force:
                text += f", {counts[4]} container errors"
            ctx.console.err(text + "\n")
            status = 1
    _final_shutdown(ctx)
    return status


def gc(ctx: Context) -> int:
    try:
        ctx.store.garbage_collect()
        text = ""
    except Exception as exc:
        text = error_text(exc)
    status = _report_action(ctx, "gc", text)
    _final_shutdown(ctx)
    return status


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
    pairs = ctx.store.version()
    if ctx.json:
        ctx.console.json([[k, v] for k, v in pairs])
    else:
        ctx.console.out("".join(f"{k}: {v}\n" for k, v in pairs))
    return 0
