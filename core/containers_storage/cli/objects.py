"""Commands on objects of any kind: ``exists``, ``metadata``, ``set-metadata``,
``get-names``, ``add-names``, ``remove-names``, ``set-names`` (cli.md §5.4)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .context import Context
from .errtext import not_found_errors


def _found(lookup: Callable[[str], object], ref: str) -> bool:
    try:
        lookup(ref)
    except not_found_errors():
        return False
    return True


def exists(ctx: Context) -> int:
    """Prints the unfiltered answer; ``-l``/``-i``/``-c`` only decide the exit status."""
    store = ctx.store
    answers: dict[str, bool] = {}
    failed = False
    for ref in ctx.args:
        present = store.exists(ref)
        answers[ref] = present
        ok = present
        if ctx.flag("layer"):
            ok = ok and _found(store.layer, ref)
        if ctx.flag("image"):
            ok = ok and _found(store.image, ref)
        if ctx.flag("container"):
            ok = ok and _found(store.container, ref)
        failed = failed or not ok
    if ctx.json:
        from ..gojson import go_map

        ctx.console.json(go_map(answers))
    elif not ctx.flag("quiet"):
        text = "".join(f"{ref}: {'true' if present else 'false'}\n" for ref, present in answers.items())
        ctx.console.out(text)
    return 1 if failed else 0


def _strip_newline(text: str) -> str:
    return text[:-1] if text.endswith("\n") else text


def metadata(ctx: Context) -> int:
    values: dict[str, str] = {}
    out: list[str] = []
    missing = False
    quiet = bool(ctx.flag("quiet"))
    for ref in ctx.args:
        try:
            value = _strip_newline(ctx.store.metadata(ref))
        except not_found_errors():
            value = ""
            missing = True
        else:
            values[ref] = value
        out.append(f"{value}\n" if quiet else f"{ref}: {value}\n")
    if ctx.json:
        from ..gojson import go_map

        ctx.console.json(go_map(values))
    else:
        ctx.console.out("".join(out))
    return 1 if missing else 0


def set_metadata(ctx: Context) -> int:
    from .errtext import CommandError
    from .images import metadata_flag

    value = metadata_flag(ctx)
    if not value:
        raise CommandError("no new metadata provided")
    ctx.store.set_metadata(ctx.args[0], value)
    return 0


def get_names(ctx: Context) -> int:
    names = ctx.store.names(ctx.args[0])
    if ctx.json:
        ctx.console.json(list(names))
    else:
        ctx.console.out("".join(f"{name}\n" for name in names))
    return 0


def _change_names(ctx: Context, change: Callable[[str, Sequence[str]], None]) -> int:
    requested = list(dict.fromkeys(str(n) for n in ctx.flag("names") or []))
    target = ctx.store.lookup(ctx.args[0])
    change(target, requested)
    if ctx.json:
        ctx.console.json(list(ctx.store.names(target)) or None)
    return 0


def add_names(ctx: Context) -> int:
    return _change_names(ctx, ctx.store.add_names)


def remove_names(ctx: Context) -> int:
    return _change_names(ctx, ctx.store.remove_names)


def set_names(ctx: Context) -> int:
    return _change_names(ctx, ctx.store.set_names)
