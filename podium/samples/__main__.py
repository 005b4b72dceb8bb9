"""``python -m podium.samples DEST [--count N] [--seed S]``: write a folder of demo photographs."""

from __future__ import annotations

import argparse
from pathlib import Path

from podium.samples.photos import write_photo_folder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m podium.samples",
        description="Write a folder of real photographs (scikit-image's bundled ones and variations).",
    )
    parser.add_argument("dest", type=Path, help="folder to write into (created if missing)")
    parser.add_argument("--count", type=int, default=48, help="number of files (default 48)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the variations (default 0)")
    args = parser.parse_args(argv)
    if args.count < 1:
        parser.error("--count must be at least 1")
    paths = write_photo_folder(args.dest, count=args.count, seed=args.seed)
    print(f"wrote {len(paths)} files to {args.dest}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
