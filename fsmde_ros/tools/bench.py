"""``fsmde-bench {model,node}``: benchmarks that print a table and write JSON (never timed tests)."""

from __future__ import annotations

import argparse
import importlib

SUITES = {
    "model": "fsmde_ros.tools.bench_model",
    "node": "fsmde_ros.tools.bench_node",
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="fsmde-bench", description=__doc__)
    sub = parser.add_subparsers(dest="suite", required=True)
    for name, module_name in SUITES.items():
        module = importlib.import_module(module_name)
        module.add_arguments(sub.add_parser(name, help=module.__doc__.splitlines()[0]))
    args = parser.parse_args(argv)
    importlib.import_module(SUITES[args.suite]).run(args)
