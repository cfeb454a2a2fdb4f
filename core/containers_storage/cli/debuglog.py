"""``--debug``: library debug logs on stderr in logrus' text format."""

from __future__ import annotations

import logging

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..config import StoreOptions
    from .context import Console


class _LogrusFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        from datetime import datetime

        stamp = datetime.fromtimestamp(record.created).astimezone().isoformat(timespec="seconds")
        level = {"WARNING": "warning", "CRITICAL": "fatal"}.get(record.levelname, record.levelname.lower())
        message = record.getMessage().replace("\\", "\\\\").replace('"', '\\"')
        return f'time="{stamp}" level={level} msg="{message}"'


class _ConsoleHandler(logging.Handler):
    def __init__(self, console: Console) -> None:
        super().__init__()
        self.console = console

    def emit(self, record: logging.LogRecord) -> None:
        self.console.err(self.format(record) + "\n")


def enable_debug_log(console: Console, options: StoreOptions) -> None:
    handler = _ConsoleHandler(console)
    handler.setFormatter(_LogrusFormatter())
    logger = logging.getLogger("containers_storage")
    for old in [h for h in logger.handlers if isinstance(h, _ConsoleHandler)]:
        logger.removeHandler(old)
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    log = logging.getLogger("containers_storage.cli")
    log.debug("Root: %s", options.graph_root)
    log.debug("Run Root: %s", options.run_root)
    log.debug("Driver Name: %s", options.driver_name)
    log.debug("Driver Options: [%s]", " ".join(options.driver_options))
