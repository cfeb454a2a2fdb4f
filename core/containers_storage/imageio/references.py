"""Image names as podman and containers/image write them into the store.

A name is ``[domain/]path[:tag][@digest]`` (the docker reference grammar). Stored names
are fully qualified: podman's local images (``podman tag``, ``load``, ``build``) get
``localhost/`` when no domain is given, names from docker archives get docker's
``docker.io/`` (and ``library/`` for a single component), and a name with neither tag
nor digest gets ``:latest``. Without this, podman's short-name lookup would not find
the image by the name it was imported under.
"""

from __future__ import annotations

import re

from .errors import InvalidReference

_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?"
_REFERENCE = re.compile(
    rf"((?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*)"
    r"(?::([\w][\w.-]{0,127}))?"
    r"(?:@([A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}))?\Z"
)
_TAG = re.compile(r"[\w][\w.-]{0,127}\Z")
_NAME_MAX = 255

LOCAL_DOMAIN = "localhost"
DOCKER_DOMAIN = "docker.io"


def _split_domain(name: str) -> tuple[str, str]:
    first, sep, rest = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first.lower() != first):
        return first, rest
    return "", name


def normalize(text: str, *, default_domain: str = LOCAL_DOMAIN) -> str:
    """``text`` fully qualified (domain and tag or digest), or :class:`InvalidReference`."""
    m = _REFERENCE.match(text)
    if m is None:
        if text and _REFERENCE.match(text.lower()):
            raise InvalidReference(f"parsing {text!r}", message="repository name must be lowercase")
        raise InvalidReference(f"parsing {text!r}")
    name, tag, digest = m.groups()
    domain, path = _split_domain(name)
    if not domain:
        domain = default_domain
    elif domain == "index.docker.io":
        domain = DOCKER_DOMAIN
    if domain == DOCKER_DOMAIN and "/" not in path:
        path = "library/" + path
    full = f"{domain}/{path}"
    if len(full) > _NAME_MAX:
        raise InvalidReference(
            f"parsing {text!r}", message=f"repository name must not be more than {_NAME_MAX} characters"
        )
    if tag:
        full += f":{tag}"
    if digest:
        full += f"@{digest}"
    if not tag and not digest:
        full += ":latest"
    return full


def is_valid_tag(text: str) -> bool:
    return _TAG.match(text) is not None


def repository_and_tag(name: str) -> tuple[str, str] | None:
    """``(repository, tag)`` of a normalized name that has a tag (digests dropped),
    as docker archives record them; None for digest-only names."""
    base = name.split("@", 1)[0]
    slash = base.rfind("/")
    colon = base.rfind(":")
    if colon <= slash:
        return None
    return base[:colon], base[colon + 1 :]
