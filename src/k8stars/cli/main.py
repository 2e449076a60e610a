"""``tarscli <subcommand> [args]``: the dispatcher.

:data:`COMMANDS` maps each subcommand to the module and function that run it; a subcommand's
module is imported only when it runs, so ``tarscli hzcheck`` (a readiness probe run every few
seconds) loads nothing but its own small module. Adding a subcommand is one line in
:data:`COMMANDS` plus a module whose function takes the argument list and returns the exit
status. A listed module that does not exist yet makes the subcommand say "not available yet".

Errors: a subcommand raises :class:`k8stars.cli.settings.CliError` (or a subclass) for a user
mistake; the dispatcher prints ``tarscli <subcommand>: <message>`` on one line to stderr and
exits with the error's code (1 = failed, 2 = bad input). An ``OSError`` is printed the same
way. Any other exception is a bug: one line too, and the traceback when ``TARSCLI_DEBUG`` is set.

Keep this module free of imports beyond ``sys`` (already loaded by the interpreter).
"""

import sys

__all__ = ["COMMANDS", "Command", "main"]


class Command:
    """One subcommand: ``name``, the ``module`` and ``function`` running it, its ``usage``
    (argument synopsis) and a one-line ``summary``. ``own_help``: the subcommand parses its
    own arguments, so ``help`` as an argument is not taken as a request for help."""

    __slots__ = ("function", "module", "name", "own_help", "summary", "usage")

    def __init__(self, name: str, module: str, function: str, usage: str, summary: str,
                 *, own_help: bool = False) -> None:
        self.name = name
        self.module = module
        self.function = function
        self.usage = usage
        self.summary = summary
        self.own_help = own_help


_P = "k8stars.cli."

#: Every subcommand, in the order ``tarscli help`` lists them.
COMMANDS: dict[str, Command] = {c.name: c for c in (
    Command("supervisor", _P + "supervisor", "main", "",
            "Container main process: genconf, register, start and watch the service"),
    Command("genconf", _P + "genconf", "main", "",
            "Generate conf/<server>.conf and data/server_info.yaml from bin/_server_meta.yaml"),
    Command("hzcheck", _P + "hzcheck", "main", "",
            "Readiness probe: data/check_status is fresh and active or deactivating"),
    Command("prestop", _P + "prestop", "main", "",
            "preStop hook: deactivate, drain for TARS_PRESTOP_WAITTIME, deregister"),
    Command("notify", _P + "notify", "main", "CMD [ARGS...]",
            "Send an admin command to the service (AdminObj.notify) and print the answer",
            own_help=True),
    Command("syncdir", _P + "syncdir", "main", "",
            "Copy changed files from TARS_SYNC_DIRECTORY to TARS_SYNC_TARGET_DIRECTORY"),
    Command("version", _P + "main", "_version", "", "Print the version"),
    Command("help", _P + "main", "_help", "[SUBCOMMAND]",
            "List the subcommands and environment variables"),
)}

_HELP_FLAGS = ("-h", "--help")


def main(argv: list[str] | None = None) -> int:
    """Run ``tarscli``; ``argv`` excludes the program name. Returns the exit status."""
    args = sys.argv[1:] if argv is None else list(argv)
    if not args or args[0] in _HELP_FLAGS:
        return _run(COMMANDS["help"], args[1:])
    name, rest = args[0], args[1:]
    command = COMMANDS.get(name)
    if command is None:
        sys.stderr.write(f"tarscli: unknown subcommand {name!r}; "
                         f"one of {', '.join(COMMANDS)} (see tarscli help)\n")
        return 2
    wants_help = rest in (["-h"], ["--help"]) or (rest == ["help"] and not command.own_help)
    if wants_help and name not in ("help", "version"):
        return _run(COMMANDS["help"], [name])
    return _run(command, rest)


def _run(command: Command, args: list[str]) -> int:
    prefix = f"tarscli {command.name}"
    try:
        try:
            __import__(command.module)
        except ModuleNotFoundError as exc:
            if exc.name != command.module:
                raise
            sys.stderr.write(f"{prefix}: not available yet in this version of tarscli\n")
            return 2
        function = getattr(sys.modules[command.module], command.function)
        status = function(args)
        sys.stdout.flush()
        return int(status or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        _silence_stdout()
        return 1
    except Exception as exc:
        return _report(prefix, exc)


def _report(prefix: str, exc: Exception) -> int:
    from .settings import CliError, Settings

    if isinstance(exc, CliError):
        sys.stderr.write(f"{prefix}: {exc.message}\n")
        return exc.exit_code
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        sys.stderr.write(f"{prefix}: {where}{exc.strerror or exc}\n")
        return 1
    try:
        debug = Settings().debug
    except Exception:
        debug = False
    if debug:
        import traceback

        traceback.print_exception(type(exc), exc, exc.__traceback__)
    sys.stderr.write(f"{prefix}: internal error: {type(exc).__name__}: {exc} "
                     "(set TARSCLI_DEBUG=1 for the traceback)\n")
    return 70


def _silence_stdout() -> None:
    """After EPIPE on stdout (``tarscli help | head``), stop Python's flush at exit failing."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def _version(args: list[str]) -> int:
    from .settings import CliError

    if args:
        raise CliError(f"takes no arguments, got {' '.join(args)!r}")
    from k8stars import __version__

    sys.stdout.write(f"{__version__}\n")
    return 0


def _help(args: list[str]) -> int:
    from .helptext import render_help
    from .settings import CliError

    if len(args) > 1:
        raise CliError("usage: tarscli help [SUBCOMMAND]")
    if args and args[0] not in COMMANDS:
        raise CliError(f"unknown subcommand {args[0]!r}; one of {', '.join(COMMANDS)}")
    sys.stdout.write(render_help(COMMANDS, args[0] if args else None))
    return 0


if __name__ == "__main__":
    sys.exit(main())
