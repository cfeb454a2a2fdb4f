"""``import-image`` and ``export-image``: images in and out of the store as OCI layouts,
OCI archives and docker archives (not in upstream's tool; see
:mod:`containers_storage.imageio`). A progress bar goes to standard error only when it
is a terminal."""

from __future__ import annotations

from .context import Context
from .progress import on_terminal

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..imageio.progress import Progress


def _progress(ctx: Context, verb: str) -> Progress | None:
    if not on_terminal(ctx.console.err_stream):
        return None
    from ..imageio.progress import TerminalBar

    return TerminalBar(ctx.console.err_stream, verb)


def import_image(ctx: Context) -> int:
    from ..imageio import import_image as run

    names = list(ctx.flag("names") or [])
    image = run(
        ctx.store,
        ctx.args[0],
        names=names or None,
        platform=str(ctx.flag("platform") or "") or None,
        progress=_progress(ctx, "Copying"),
    )
    if ctx.json:
        ctx.console.json(image.to_json(extra=False))
    else:
        ctx.console.out(image.id + "\n" + "".join(f"\t{name}\n" for name in image.names))
    return 0


def export_image(ctx: Context) -> int:
    from ..imageio import export_image as run

    done = run(
        ctx.store,
        ctx.args[0],
        ctx.args[1],
        format=str(ctx.flag("format") or "") or None,
        compression=str(ctx.flag("compress") or "") or None,
        progress=_progress(ctx, "Writing"),
    )
    if ctx.json:
        ctx.console.json({
            "location": str(done.location),
            "manifest-digest": done.manifest_digest,
            "config-digest": done.config_digest,
            "layers": list(done.layer_digests),
        })
    else:
        ctx.console.out((done.manifest_digest or done.config_digest) + "\n")
    return 0
