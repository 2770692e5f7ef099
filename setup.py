"""What pyproject.toml cannot declare: the optional C fast paths of the media fan-out and of the
player sockets' broadcast writes, and
docs/FAIRNESS.md shipped inside the package (served at /v1/docs/fairness from an installed edge).

The extensions are optional: without a C compiler or Python headers the install still succeeds
and the fan-outs use their pure-Python paths (edge_agent.media.fastsend.AVAILABLE and
edge_agent.api.wsfanout.AVAILABLE are then False).
"""
import shutil
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_py import build_py

FAIRNESS = Path(__file__).parent / "docs" / "FAIRNESS.md"


class BuildWithDocs(build_py):
    """docs/FAIRNESS.md stays the one copy in the source tree; wheels carry it as
    edge_agent/docs/FAIRNESS.md."""

    def run(self) -> None:
        super().run()
        if FAIRNESS.is_file():
            target = Path(self.build_lib) / "edge_agent" / "docs"
            target.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(FAIRNESS, target / "FAIRNESS.md")


setup(
    cmdclass={"build_py": BuildWithDocs},
    ext_modules=[
        Extension(
            "edge_agent.media._fastsend",
            sources=["edge_agent/media/_fastsend.c"],
            extra_compile_args=["-O2", "-std=gnu11"],
            optional=True,
        ),
        Extension(
            "edge_agent.api._wsfanout",
            sources=["edge_agent/api/_wsfanout.c"],
            extra_compile_args=["-O2", "-std=gnu11"],
            optional=True,
        ),
    ],
)
