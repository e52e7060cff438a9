"""Unpack the results that ``benchmarks/device_runs.sh`` sent back into run directories.

    python benchmarks/device_unpack.py /work/.device/.../runs.tar.part0 ... [--runs runs]

Each ``NAME.nc`` of the (split) tar becomes ``RUNS/NAME/results.nc``, readable by ``jaxsym
report`` like a run trained here (its provenance attributes name the device). An existing
results.nc is not overwritten unless ``--force``.
"""

from __future__ import annotations

import argparse
import io
import sys
import tarfile
from pathlib import Path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("parts", nargs="+", help="runs.tar.part0, runs.tar.part1, ... in order")
    parser.add_argument("--runs", default="runs", help="where the run directories go")
    parser.add_argument("--force", action="store_true", help="overwrite existing results.nc")
    args = parser.parse_args(argv)
    data = b"".join(Path(p).read_bytes() for p in sorted(args.parts))
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for member in tar.getmembers():
            name = Path(member.name).name
            if not name.endswith(".nc") or "/" in member.name:
                print(f"skipping {member.name!r}", file=sys.stderr)
                continue
            target = Path(args.runs) / name[:-3] / "results.nc"
            if target.exists() and not args.force:
                print(f"{target} exists; kept (--force to overwrite)")
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(tar.extractfile(member).read())
            print(f"-> {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
