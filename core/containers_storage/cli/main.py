"""Entry point of ``containers-storage``: the two flag passes, usage, store opening.

The order of events and every printed word follow cli.md §1-§3. Only the module of the
command that runs is imported (see :mod:`.registry`), and the store only when it opens.
"""

from __future__ import annotations

import os
import sys

from . import registry
from .context import Console
from .flags import FlagError, FlagSet, HelpRequested

TYPE_CHECKING = False  # typing costs ms at start-up; type checkers treat this as True

if TYPE_CHECKING:
    from typing import IO

EXIT_USAGE = 125


def _global_usage(con: Console, flags: FlagSet, table_on_out: bool = False) -> None:
    con.out("Usage: containers-storage command [options [...]]\n\nCommands:\n\n")
    for command in registry.COMMANDS:
        con.out(f"  {command.names[0]:<30}{command.description}\n")
    con.out("\nOptions:\n")
    (con.out if table_on_out else con.err)(flags.defaults_table())


def _command_usage(con: Console, word: str, command: registry.Command, flags: FlagSet) -> None:
    con.out(f"Usage: containers-storage {word} {command.synopsis}\n\n{command.description}\n\nOptions:\n")
    con.err(flags.defaults_table())


def main(argv: list[str] | None = None, *, stdout: IO[bytes] | None = None,
         stderr: IO[bytes] | None = None) -> int:
    """Run one command line; return the exit status (the console script exits with it)."""
    con = Console(stdout or sys.stdout.buffer, stderr or sys.stderr.buffer)
    args = sys.argv[1:] if argv is None else list(argv)
    try:
        return _main(args, con)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (``| head``): nothing more to say, as Go's SIGPIPE exit.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, con.out_stream.fileno())
        except (OSError, ValueError, AttributeError):
            pass
        return 1
    finally:
        try:
            con.flush()
        except (BrokenPipeError, ValueError):
            pass


def _main(args: list[str], con: Console) -> int:
    argv0 = sys.argv[0] if sys.argv and sys.argv[0] else "containers-storage"
    values: dict[str, object] = {}
    gflags = FlagSet("containers-storage", values)
    gflags.extend(registry.global_flags())
    gflags.add(registry.HELP_FLAG)
    if not args:
        _global_usage(con, gflags)
        return 1
    try:
        rest = gflags.parse(args, con.err)
    except HelpRequested as exc:
        _global_usage(con, gflags)
        con.out(f"{exc} while parsing arguments (1)\n")
        _global_usage(con, gflags)
        return 1
    except FlagError as exc:
        con.err(f"{exc}\nSee '{argv0} containers-storage --help'.\n")
        con.out(f"{exc} while parsing arguments (1)\n")
        _global_usage(con, gflags)
        return 1
    if values.get("help"):
        _global_usage(con, gflags, table_on_out=True)
        return 0

    from .options import load_defaults, wants_defaults

    if wants_defaults(values):
        load_defaults(values)
    if not rest:
        _global_usage(con, gflags)
        return 1
    word, rest = rest[0], rest[1:]
    command = registry.find(word)
    if command is None:
        con.out(f"{word}: unrecognized command.\n")
        return 1

    cflags = FlagSet(word, values)
    cflags.extend(registry.global_flags())
    cflags.extend(command.flags)
    try:
        positional = cflags.parse(rest, con.err)
    except HelpRequested:
        _command_usage(con, word, command, cflags)
        return EXIT_USAGE
    except FlagError as exc:
        con.err(f"{exc}\nSee '{argv0} {word} --help'.\n")
        return EXIT_USAGE
    if len(positional) < command.min_args:
        con.out(f"{word}: more arguments required.\n")
        _command_usage(con, word, command, cflags)
        return 1
    if command.max_args != registry.UNLIMITED and len(positional) > command.max_args:
        from .gofmt import go_list

        con.out(f"{word}: too many arguments ({go_list(positional)}).\n")
        _command_usage(con, word, command, cflags)
        return 1
    if values.get("unshare") or command.names[0] == "unshare":
        from .unshare import maybe_reexec

        status = maybe_reexec(con, args, even_for_root=command.names[0] == "unshare")
        if status is not None:
            return status
    return _run(command, word, positional, values, con)


def _run(command: registry.Command, word: str, positional: list[str], values: dict[str, object],
         con: Console) -> int:
    from .context import Context
    from .errtext import error_text
    from .options import store_options

    debug = bool(values.get("debug"))
    try:
        options = store_options(values)
    except Exception as exc:
        _traceback(con, exc, debug)
        con.out(f"error initializing: {error_text(exc)}\n")
        return 1
    if debug:
        from .debuglog import enable_debug_log

        enable_debug_log(con, options)
    handler = command.load()
    new_id = str(values.get("id") or "")
    if new_id:
        # a new record's ID is checked before the store is even opened
        from ..records.ids import validate_id

        try:
            validate_id(new_id, _ID_KINDS.get(command.names[0], "layer"))
        except ValueError as exc:
            _traceback(con, exc, debug)
            con.err(f"{error_text(exc)}\n")
            return 1
    store = None
    if command.needs_store:
        from ..store import get_store

        try:
            store = get_store(options)
        except Exception as exc:
            _traceback(con, exc, debug)
            con.out(f"error initializing: {error_text(exc)}\n")
            return 1
    ctx = Context(word, positional, values, con, options, store)
    try:
        return handler(ctx)
    except Exception as exc:
        _traceback(con, exc, debug)
        con.err(f"{error_text(exc)}\n")
        return 1
    finally:
        if store is not None:
            store.close()


#: what the ``--id`` of a command names (the others' name layers)
_ID_KINDS = {"create-image": "image", "create-container": "container"}


def _traceback(con: Console, exc: BaseException, debug: bool) -> None:
    """Errors are one line; ``--debug`` adds the Python traceback in front of it."""
    if debug:
        import traceback

        con.err("".join(traceback.format_exception(exc)))
