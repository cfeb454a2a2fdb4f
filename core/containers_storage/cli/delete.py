"""Deleting: ``delete``, ``delete-layer``, ``delete-image``, ``delete-container``.

Each argument is handled on its own; failures are collected, reported per argument on
standard error (or in the JSON object) and make the exit status 1.
"""

from __future__ import annotations

from collections.abc import Callable

from .context import Context
from .errtext import error_text


def _each(ctx: Context, action: Callable[[str], None]) -> int:
    errors: dict[str, str] = {}
    for ref in ctx.args:
        try:
            action(ref)
        except Exception as exc:
            errors[ref] = error_text(exc)
        else:
            errors[ref] = ""
    if ctx.json:
        from ..gojson import go_map

        ctx.console.json(go_map(errors))
    else:
        for ref, text in errors.items():
            if text:
                ctx.console.err(f"{ref}: {text}\n")
    return 1 if any(errors.values()) else 0


def delete(ctx: Context) -> int:
    return _each(ctx, ctx.store.delete)


def delete_layer(ctx: Context) -> int:
    return _each(ctx, ctx.store.delete_layer)


def delete_container(ctx: Context) -> int:
    return _each(ctx, ctx.store.delete_container)


def delete_image(ctx: Context) -> int:
    """Deleted layers are reported on standard error, as upstream does."""
    commit = not ctx.flag("test")
    results: dict[str, dict[str, object]] = {}
    failed = False
    for ref in ctx.args:
        entry: dict[str, object] = {}
        try:
            deleted = ctx.store.delete_image(ref, commit=commit)
        except Exception as exc:
            entry["error"] = error_text(exc)
            failed = True
        else:
            if deleted:
                entry["deleted-layers"] = list(deleted)
        results[ref] = entry
    if ctx.json:
        from ..gojson import go_map

        ctx.console.json(go_map(results))
    else:
        for ref, entry in results.items():
            if "error" in entry:
                ctx.console.err(f"{ref}: {entry['error']}\n")
            for layer_id in entry.get("deleted-layers", []):  # type: ignore[attr-defined]
                ctx.console.err(f"{ref}: {layer_id}\n")
    return 1 if failed else 0
