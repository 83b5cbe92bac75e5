"""Print which CPU kernels torch uses here, and fail if they are not the ones asked for.

``tools/cpu_variants.sh`` forces other instruction sets with ``ONEDNN_MAX_CPU_ISA`` (oneDNN:
convolutions) and ``ATEN_CPU_CAPABILITY`` (ATen: the other operators). A misspelt or ignored
variable would silently test the default kernels again, so this checks what torch reports.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys

# ONEDNN_MAX_CPU_ISA value -> what oneDNN's verbose mode names it ("isa:Intel AVX2 ...")
ONEDNN_NAMES = {"SSE41": "SSE4.1", "AVX": "AVX", "AVX2": "AVX2", "AVX512_CORE": "AVX-512"}
PROBE = ("import torch\n"
         "x = torch.ones(8, 32, 14, 14)\n"  # large enough that torch hands it to oneDNN
         "torch.nn.functional.conv2d(x, torch.ones(64, 32, 3, 3), padding=1)\n"
         "print('aten', torch.backends.cpu.get_cpu_capability())\n")


def kernels() -> dict[str, str]:
    """{'onednn': ..., 'aten': ...} as a fresh torch process reports them."""
    env = {**os.environ, "ONEDNN_VERBOSE": "1"}
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True,
                         check=True, timeout=120).stdout
    found = {"onednn": "?", "aten": "?"}
    for line in out.splitlines():
        if ",isa:" in line and found["onednn"] == "?":
            found["onednn"] = line.split(",isa:", 1)[1]
        elif line.startswith("aten "):
            found["aten"] = line.split(" ", 1)[1]
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--expect-isa", default="ALL", help="ONEDNN_MAX_CPU_ISA asked for (ALL: any)")
    parser.add_argument("--expect-aten", default="-", help="ATEN_CPU_CAPABILITY asked for (-: any)")
    args = parser.parse_args()
    found = kernels()
    print(f"oneDNN: {found['onednn']} | ATen: {found['aten']}")
    problems = []
    if args.expect_isa != "ALL" and ONEDNN_NAMES.get(args.expect_isa, args.expect_isa) not in found["onednn"]:
        problems.append(f"oneDNN uses {found['onednn']!r}, not {args.expect_isa}")
    if args.expect_aten != "-" and found["aten"].lower() != args.expect_aten.lower():
        problems.append(f"ATen uses {found['aten']!r}, not {args.expect_aten}")
    for problem in problems:
        print(f"cpu_kernels: {problem}: the variable did not take effect", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
