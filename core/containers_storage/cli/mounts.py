"""Mount counting: ``mount``, ``unmount``, ``mounted`` (cli.md §5.5)."""

from __future__ import annotations

from .context import Context
from .errtext import error_text

#: what ``mount -r`` passes (the store adds ``ro`` for an image's top layer), as upstream
_READ_ONLY_IMAGE_OPTIONS = ("noexec", "nosuid")


def mount(ctx: Context) -> int:
    """``--opt`` is accepted and ignored, as upstream."""
    label = str(ctx.flag("label") or "")
    results: list[dict[str, str]] = []
    for ref in ctx.args:
        point, text = "", ""
        try:
            if ctx.flag("read_only"):
                point = ctx.store.mount_image(ref, _READ_ONLY_IMAGE_OPTIONS, label)
            else:
                point = ctx.store.mount(ref, label)
        except Exception as exc:
            text = error_text(exc)
        results.append({"id": ref, "mountpoint": point, "error": text})
    if ctx.json:
        ctx.console.json(results)
    else:
        for result in results:
            if result["error"]:
                ctx.console.err(f"{result['error']} while mounting {result['id']}\n")
            ctx.console.out(result["mountpoint"] + "\n")
    return 1 if any(r["error"] for r in results) else 0


def unmount(ctx: Context) -> int:
    """A layer or container first; if that fails, an image's top layer; else the first error."""
    force = bool(ctx.flag("force"))
    results: list[dict[str, str]] = []
    for ref in ctx.args:
        text = ""
        try:
            still_mounted = ctx.store.unmount(ref, force)
        except Exception as exc:
            try:
                ctx.store.unmount_image(ref, force)
            except Exception:
                text = error_text(exc)
        else:
            if not still_mounted:
                ctx.console.out(f"{ref} mountpoint unmounted\n")
        results.append({"id": ref, "error": text})
    _report(ctx, results, "while unmounting")
    return 1 if any(r["error"] for r in results) else 0


def mounted(ctx: Context) -> int:
    results: list[dict[str, str]] = []
    for ref in ctx.args:
        text = ""
        try:
            if ctx.store.mounted(ref) > 0:
                ctx.console.out(f"{ref} mounted\n")
        except Exception as exc:
            text = error_text(exc)
        results.append({"id": ref, "error": text})
    _report(ctx, results, "checking if", suffix=" is mounted")
    return 1 if any(r["error"] for r in results) else 0


def _report(ctx: Context, results: list[dict[str, str]], words: str, suffix: str = "") -> None:
    if ctx.json:
        ctx.console.json(results)
        return
    for result in results:
        if result["error"]:
            ctx.console.err(f"{result['error']} {words} {result['id']}{suffix}\n")
