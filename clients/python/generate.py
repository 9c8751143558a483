"""Generates the protobuf and gRPC modules of the Tributary API from `proto/` with
grpcio-tools, as the package `tributary.v1` (`admin_pb2`, `admin_pb2_grpc`, ...).

usage: python generate.py [--proto DIR] [--out DIR]

`--out` is the directory that holds the `tributary` package (default: this directory, whose
`tributary/v1/` is ignored by git); `setup.py` calls `generate()` into the build directory.
Files are replaced atomically and leftovers of removed `.proto` files are deleted, so the
output is always exactly what the current `proto/` gives.
"""

import argparse
import importlib.resources
import os
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_PROTO = HERE.parent.parent / "proto"
PACKAGE = Path("tributary") / "v1"


def generate(out=HERE, proto=DEFAULT_PROTO):
    """Writes `out/tributary/v1/*.py` (and `.pyi` stubs); returns the files written."""
    from grpc_tools import protoc

    proto = Path(os.environ.get("TRIBUTARY_PROTO", proto)).resolve()
    sources = sorted((proto / PACKAGE).glob("*.proto"))
    if not sources:
        raise SystemExit(f"generate.py: no .proto files in {proto / PACKAGE}")
    well_known = importlib.resources.files("grpc_tools") / "_proto"
    dest = Path(out) / PACKAGE
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest) as tmp:
        args = [
            "grpc_tools.protoc",
            f"-I{proto}",
            f"-I{well_known}",
            f"--python_out={tmp}",
            f"--pyi_out={tmp}",
            f"--grpc_python_out={tmp}",
            *(str(s.relative_to(proto)) for s in sources),
        ]
        if protoc.main(args) != 0:
            raise SystemExit(f"generate.py: protoc failed on {proto}")
        produced = Path(tmp) / PACKAGE
        (produced / "__init__.py").write_text('"""Generated from proto/tributary/v1."""\n')
        names = {p.name for p in produced.iterdir()}
        for name in names:
            os.replace(produced / name, dest / name)
    for stale in dest.iterdir():
        if stale.is_file() and stale.name not in names:
            stale.unlink()
    return sorted(dest / n for n in names)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--proto", default=DEFAULT_PROTO, type=Path)
    parser.add_argument("--out", default=HERE, type=Path)
    a = parser.parse_args(argv)
    for f in generate(a.out, a.proto):
        print(f)


if __name__ == "__main__":
    sys.exit(main())
