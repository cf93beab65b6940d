"""converters/ must run without TensorFlow and never reach up into edgeloop/."""

from __future__ import annotations

import subprocess
import sys


def test_converters_import_neither_tensorflow_nor_edgeloop(repo_root):
    code = (
        "import sys, converters, converters.golden, converters.c_array, converters.luts\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'edgeloop',"
        " 'tflite_micro')]\n"
        "print(bad); sys.exit(1 if bad else 0)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=repo_root, capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stdout + r.stderr
