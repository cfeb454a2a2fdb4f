"""Container commands: ``containers``, ``container``, ``create-container``,
``get-container-dir``, ``get-container-run-dir`` (cli.md §5.3)."""

from __future__ import annotations

from .context import Context


def containers(ctx: Context) -> int:
    found = ctx.store.containers()
    if ctx.json:
        ctx.console.json([c.to_json(extra=False) for c in found])
        return 0
    out: list[str] = []
    for c in found:
        out.append(c.id + "\n")
        out.extend(f"\tname: {name}\n" for name in c.names)
        out.extend(f"\tdata: {key}\n" for key in c.big_data_names)
    ctx.console.out("".join(out))
    return 0


def container(ctx: Context) -> int:
    from ..records.model import Container
    from .errtext import error_text, not_found_errors

    found: list[Container] = []
    missing = False
    for ref in ctx.args:
        try:
            found.append(ctx.store.container(ref))
        except not_found_errors():
            missing = True
    if ctx.json:
        ctx.console.json([c.to_json(extra=False) for c in found])
        return 1 if missing else 0
    images = ctx.store.images() if found else []
    for c in found:
        out = [f"ID: {c.id}\n"]
        out.extend(f"Name: {name}\n" for name in c.names)
        out.append(f"Image: {c.image_id}\n")
        image = next((i for i in images if i.id == c.image_id), None)
        if image is not None:
            out.extend(f"Image name: {name}\n" for name in image.names)
        try:
            out.append(f"Size: {ctx.store.container_size(c.id)}\n")
        except Exception as exc:
            out.append(f"Size unknown: {error_text(exc)}\n")
        out.append(f"Layer: {c.layer_id}\n")
        out.extend(f"Data: {key}\n" for key in c.big_data_names)
        ctx.console.out("".join(out))
    return 1 if missing else 0


def create_container(ctx: Context) -> int:
    from ..store import ContainerOptions
    from .idmapflags import id_mapping_options
    from .images import metadata_flag

    metadata = metadata_flag(ctx)
    new = ctx.store.create_container(
        id=str(ctx.flag("id") or ""),
        names=list(ctx.flag("names") or []),
        image=ctx.args[0],
        metadata=metadata,
        options=ContainerOptions(
            id_mapping=id_mapping_options(ctx),
            metadata=metadata,
            volatile=bool(ctx.flag("volatile")),
        ),
    )
    if ctx.json:
        ctx.console.json(new.to_json(extra=False))
    else:
        # Upstream prints the names without a newline.
        ctx.console.out(new.id + "\n" + "".join(f"\t{name}" for name in new.names))
    return 0


def get_container_dir(ctx: Context) -> int:
    ctx.console.out(ctx.store.container_directory(ctx.args[0]) + "\n")
    return 0


def get_container_run_dir(ctx: Context) -> int:
    ctx.console.out(ctx.store.container_run_directory(ctx.args[0]) + "\n")
    return 0
