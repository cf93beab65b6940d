"""Packaging that pyproject.toml cannot say: the example projects ship inside the package.

examples/ stays where a newcomer looks for it; installed, it is edgeloop/examples/ (package
data), so `edgeloop demo`, `edgeloop simulate` and the HIL bench work from any folder without
the checkout (edgeloop.resources finds either place).
"""

from setuptools import find_namespace_packages, setup

# one package per example project (examples/<name>/edgeloop.toml), all mapped under edgeloop/
EXAMPLES = ["edgeloop.examples"] + [
    f"edgeloop.examples.{name}" for name in find_namespace_packages(where="examples")
]

setup(
    # namespace-style discovery: the device folders (firmware_micropython/elrt, ...) have no
    # __init__.py, they are MicroPython packages
    packages=find_namespace_packages(
        include=["edgeloop*", "trainer*", "converters*", "firmware_micropython*", "hil_tests*"],
        exclude=["*.__pycache__"],
    )
    + EXAMPLES,
    package_dir={"edgeloop.examples": "examples"},
    package_data={
        "firmware_micropython": ["*.py", "**/*.py"],
        **{name: ["*.toml", "*.md"] for name in EXAMPLES},
    },
)
