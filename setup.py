"""Only the C fast path of the media fan-out; everything else is in pyproject.toml.

The extension is optional: without a C compiler or Python headers the install still succeeds
and the fan-out uses its pure-Python path (edge_agent.media.fastsend.AVAILABLE is then False).
"""
from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "edge_agent.media._fastsend",
            sources=["edge_agent/media/_fastsend.c"],
            extra_compile_args=["-O2", "-std=gnu11"],
            optional=True,
        )
    ]
)
