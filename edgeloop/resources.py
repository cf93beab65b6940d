"""Files EdgeLoop ships besides code: the example projects, found in a checkout or installed.

In a checkout they are examples/ at the top; a wheel carries them as edgeloop/examples/
(setup.py maps one onto the other), so nothing depends on the current folder or the checkout.
"""

from __future__ import annotations

from pathlib import Path

from edgeloop.errors import EdgeLoopError

_HERE = Path(__file__).resolve().parent


def examples_dir() -> Path:
    """The folder of example projects (one sub-folder with an edgeloop.toml per domain)."""
    for candidate in (_HERE / "examples", _HERE.parent / "examples"):
        if candidate.is_dir():
            return candidate
    raise EdgeLoopError(
        f"the example projects are missing ({_HERE / 'examples'} does not exist): "
        "reinstall EdgeLoop (pip install edgeloop)"
    )


def example_config(name: str) -> Path:
    """examples/<name>/edgeloop.toml; says which examples exist when `name` is not one."""
    path = examples_dir() / name / "edgeloop.toml"
    if not path.is_file():
        known = sorted(p.parent.name for p in examples_dir().glob("*/edgeloop.toml"))
        raise EdgeLoopError(f"no example project {name!r} (examples: {', '.join(known)})")
    return path


TWIN_EXAMPLES = {"rotating_machine_b": "rotating_machine"}  # a twin variant: its kind's project


def twin_example(twin: str) -> Path:
    """The example project of a twin: examples are named after their twins, a variant of one
    (trainer.twins, e.g. rotating_machine_b) shares its kind's."""
    return example_config(TWIN_EXAMPLES.get(twin, twin))
