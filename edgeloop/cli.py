"""The `edgeloop` command: thin wrappers over trainer/, converters/ and the board link.

Command modules live in edgeloop/commands/ and each exposes `register(app)`. Typed errors from the
layers below become one-line messages here, and nowhere else.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Annotated

import typer

from converters.errors import ConvertError
from edgeloop import __version__
from edgeloop.boards import UnknownBoardError
from edgeloop.commands import boards, collect, convert, demo, fleet, hil, infer, label, train
from edgeloop.errors import EdgeLoopError
from trainer.errors import TrainerError

# TensorFlow's C++ start-up chatter buries our output; users can set their own level.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

app = typer.Typer(
    name="edgeloop",
    help="Train, quantize, convert, deploy and verify int8 TinyML models on ESP32 boards.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # typer's rich help prints `--json <bool>` for every flag (a flag takes no value: `--json
    # true` is refused); its plain, click-style help shows flags as flags.
    rich_markup_mode=None,
)



def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"edgeloop {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True,
                     help="print the version and exit"),
    ] = False,
) -> None:
    """Train, quantize, convert, deploy and verify int8 TinyML models on ESP32 boards."""


# Each command module in edgeloop/commands/ adds its commands with register(app).
for _module in (convert, infer, train, boards, hil, demo, fleet, collect, label):
    _module.register(app)


def _user_errors() -> tuple[type[BaseException], ...]:
    """Each layer's own user-facing error base: the layers know nothing of each other, the CLI
    turns all of them into messages."""
    return (EdgeLoopError, UnknownBoardError, FileNotFoundError, ConvertError, TrainerError)


def main() -> None:
    """Entry point: run the app, turning known errors into short messages and exit code 2."""
    try:
        # Without standalone mode click *returns* the code of a `raise typer.Exit(n)` (e.g. hil's
        # failed scenarios) instead of exiting: pass it on, or CI would see success.
        code = app(standalone_mode=False)
        if isinstance(code, int) and not isinstance(code, bool) and code != 0:
            sys.exit(code)
    except _user_errors() as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        sys.exit(2)
    except OSError as exc:
        if exc.filename is None:  # not about a path the user gave: a real fault, keep the trace
            raise
        # e.g. `-o` names an existing file, or a folder we may not write to
        typer.secho(f"error: {exc.filename}: {exc.strerror}", fg=typer.colors.RED, err=True)
        sys.exit(2)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        typer.secho("aborted", err=True)
        sys.exit(1)
    except Exception as exc:  # click usage errors arrive here with standalone_mode=False
        if isinstance(exc, _click_exceptions()):
            ctx = getattr(exc, "ctx", None)
            if ctx is not None and type(exc).__name__ != "NoArgsIsHelpError":
                # a usage error: one line, and where to read more
                typer.secho(f"error: {exc.format_message()} (see `{ctx.command_path} --help`)",
                            fg=typer.colors.RED, err=True)
            else:
                exc.show()
            sys.exit(exc.exit_code)
        raise


def _click_exceptions() -> tuple[type[BaseException], ...]:
    """Usage-error bases: typer >= 0.29 raises its vendored click's, older typer plain click's."""
    found: list[type[BaseException]] = []
    for module in ("typer._click.exceptions", "click.exceptions"):
        try:
            found.append(importlib.import_module(module).ClickException)
        except (ImportError, AttributeError):
            pass
    return tuple(found)


if __name__ == "__main__":
    main()
