"""Check every family on CUDA against CPU results and time the large-n paths.

Each family contributes ``benchmarks/gpu_<family>.py`` with ``run(device) -> list of dict``
(keys ``check``, ``max_abs_diff``, ``cpu_seconds``, ``device_seconds``, ``ok``). This script
runs them all and prints one table, then writes ``benchmarks/results/gpu_check.json``.

Usage::

    python benchmarks/gpu_check.py [--device cuda] [--families causal,sdr]

Without CUDA (and without ``--device cpu``) it says so and exits 0.
"""

import argparse
import importlib.util
import json
import pathlib
import sys
import time
import traceback

HERE = pathlib.Path(__file__).resolve().parent
FAMILIES = ("causal", "sdr", "bottleneck", "ebm", "kernels")


def _load(family):
    path = HERE / f"gpu_{family}.py"
    if not path.exists():
        return None
    spec = importlib.util.spec_from_file_location(f"gpu_{family}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--families", default=",".join(FAMILIES))
    args = parser.parse_args(argv)

    sys.path.insert(0, str(HERE.parent))
    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("gpu_check: CUDA is not available on this machine; nothing to check.")
        return 0
    name = torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu"
    print(f"gpu_check on {args.device} ({name}), torch {torch.__version__}")
    rows, failures = [], 0
    for family in args.families.split(","):
        module = _load(family)
        if module is None:
            print(f"[{family}] no benchmarks/gpu_{family}.py; skipped")
            continue
        start = time.perf_counter()
        try:
            for row in module.run(args.device):
                rows.append({"family": family, **row})
                failures += not row.get("ok", False)
        except Exception:  # report and go on with the other families
            failures += 1
            rows.append({"family": family, "check": "crashed", "ok": False,
                         "error": traceback.format_exc(limit=3)})
            traceback.print_exc()
        print(f"[{family}] done in {time.perf_counter() - start:.1f} s", flush=True)

    header = (f"{'family':<11}{'check':<44}{'max|diff|':>11}{'cpu s':>9}{'dev s':>9}"
              f"{'speed-up':>9}  ok")
    print(header)
    print("-" * len(header))
    for r in rows:
        cpu, dev = r.get("cpu_seconds"), r.get("device_seconds")
        speed = f"{cpu / dev:9.1f}" if cpu and dev else f"{'':>9}"
        diff = r.get("max_abs_diff")
        print(f"{r['family']:<11}{r['check'][:43]:<44}"
              f"{(f'{diff:.2e}' if diff is not None else '-'):>11}"
              f"{(f'{cpu:.2f}' if cpu is not None else '-'):>9}"
              f"{(f'{dev:.2f}' if dev is not None else '-'):>9}{speed}  {r.get('ok')}")
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "gpu_check.json").write_text(json.dumps(rows, indent=2, default=str))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
