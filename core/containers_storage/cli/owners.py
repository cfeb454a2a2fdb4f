"""``layer-parent-owners`` and ``container-parent-owners`` (cli.md §5.1, §5.3)."""

from __future__ import annotations

from collections.abc import Callable

from .context import Context
from .errtext import not_found_errors
from .gofmt import go_list


def _owners(ctx: Context, resolve: Callable[[str], str],
            compute: Callable[[str], tuple[list[int], list[int]]], always_both: bool) -> int:
    """Each resolvable argument in turn; unresolvable ones make the exit status 1."""
    missing = False
    for ref in ctx.args:
        try:
            object_id = resolve(ref)
        except not_found_errors():
            missing = True
            continue
        uids, gids = compute(object_id)
        uids, gids = sorted(uids), sorted(gids)
        if ctx.json:
            ctx.console.json({"ID": object_id, "UIDs": uids or None, "GIDs": gids or None})
            continue
        out = [f"ID: {object_id}\n"]
        if uids or always_both:
            out.append(f"UIDs: {go_list(uids)}\n")
        if gids or always_both:
            out.append(f"GIDs: {go_list(gids)}\n")
        ctx.console.out("".join(out))
    return 1 if missing else 0


def layer_parent_owners(ctx: Context) -> int:
    return _owners(ctx, lambda ref: ctx.store.layer(ref).id, ctx.store.layer_parent_owners, False)


def container_parent_owners(ctx: Context) -> int:
    return _owners(ctx, lambda ref: ctx.store.container(ref).id, ctx.store.container_parent_owners, True)
