"""The ID-mapping flags of the create commands (cli.md §5.6)."""

from __future__ import annotations

from .context import Context
from .flags import value_error

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..store import IDMappingOptions


def id_mapping_options(ctx: Context) -> IDMappingOptions:
    """Sub-maps first (from /etc/subuid, /etc/subgid), explicit triples appended.

    Each field of a map is an unsigned 32-bit number, as upstream's parser takes (so
    upstream reads back what is saved). Raises
    :class:`~containers_storage.errors.ConfigError` with upstream's wording, after the
    flag's name.
    """
    from ..config import parse_id_map_setting, subordinate_ids
    from ..errors import ConfigError
    from ..store import IDMappingOptions

    host_uid, host_gid = bool(ctx.flag("hostuidmap")), bool(ctx.flag("hostgidmap"))
    uid_spec, gid_spec = str(ctx.flag("uidmap") or ""), str(ctx.flag("gidmap") or "")
    sub_user, sub_group = str(ctx.flag("subuidmap") or ""), str(ctx.flag("subgidmap") or "")
    if sub_user and not sub_group:
        sub_group = sub_user
    if sub_group and not sub_user:
        sub_user = sub_group
    if host_uid and (uid_spec or sub_user):
        raise ConfigError(message="host uid map specified along with UID mapping")
    if host_gid and (gid_spec or sub_group):
        raise ConfigError(message="host gid map specified along with GID mapping")
    uid_map = subordinate_ids(sub_user, "/etc/subuid") if sub_user else ()
    gid_map = subordinate_ids(sub_group, "/etc/subgid") if sub_group else ()
    try:
        if uid_spec:
            uid_map += parse_id_map_setting(uid_spec, "uid")
    except ConfigError as exc:
        raise ConfigError(message=value_error("uidmap", uid_spec, exc)) from None
    try:
        if gid_spec:
            gid_map += parse_id_map_setting(gid_spec, "gid")
    except ConfigError as exc:
        raise ConfigError(message=value_error("gidmap", gid_spec, exc)) from None
    return IDMappingOptions(
        host_uid_mapping=host_uid, host_gid_mapping=host_gid, uid_map=uid_map, gid_map=gid_map
    )
