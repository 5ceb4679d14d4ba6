"""`make image`: build the node's container image with podman on a locally made Debian base (or reuse the build).

Prints the tag and the size. Nothing is pulled: the base comes from Debian's packages (mmdebstrap), the Python
packages from the lock file (eucaim_node.stack.podman).
"""

from __future__ import annotations

import sys
import time

from eucaim_node.stack import ComponentFailed
from eucaim_node.stack.podman import IMAGE_DEV_TAG, build_image


def main() -> int:
    started = time.monotonic()
    try:
        image = build_image()
    except ComponentFailed as exc:
        print(f"image: {exc}", file=sys.stderr)
        return 1
    how = f"built in {image.build_seconds:.0f} s" if image.build_seconds else "reused (same inputs)"
    print(f"image {image.tag} (also {IMAGE_DEV_TAG}): {image.size_mb:.0f} MB, {how}; base {image.base}; "
          f"{time.monotonic() - started:.0f} s in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
