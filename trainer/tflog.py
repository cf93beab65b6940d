"""Keep TensorFlow's chatter in a log file and our own progress on the console.

TensorFlow and LiteRT write much of their chatter from C++ straight to file descriptors 1 and 2
(oneDNN notices, `E0000 ... node_def_util.cc`, `fully_quantize: 0 ...`, the XNNPACK delegate), so
redirecting sys.stdout/sys.stderr is not enough: `tf_logs_to(path)` points fds 1 and 2 at the log
file and hands back a stream on the real console for our progress bar.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO


@contextlib.contextmanager
def tf_logs_to(log_path: Path) -> Iterator[TextIO]:
    """Within the block fds 1 and 2 (and Python warnings) go to log_path; yields the console."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    console = os.fdopen(os.dup(saved[2]), "w", buffering=1)
    handler = logging.FileHandler(log_path)
    loggers = [logging.getLogger(n) for n in ("tensorflow", "absl", "keras", "h5py")]
    try:
        for fd in (1, 2):
            os.dup2(log, fd)
        for lg in loggers:
            lg.addHandler(handler)
        with warnings.catch_warnings():
            warnings.simplefilter("default")
            warnings.showwarning = _to_file(handler)
            yield console
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        for fd, orig in saved.items():
            os.dup2(orig, fd)
            os.close(orig)
        os.close(log)
        for lg in loggers:
            lg.removeHandler(handler)
        handler.close()
        console.close()


def _to_file(handler: logging.Handler):
    def show(message, category, filename, lineno, file=None, line=None) -> None:
        handler.stream.write(warnings.formatwarning(message, category, filename, lineno, line))
        handler.flush()

    return show
