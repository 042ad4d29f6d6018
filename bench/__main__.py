"""``python -m bench [--quick] [--only SCENARIO ...] [--rounds N]``: llmplex vs LiteLLM, see BENCHMARKS.md."""

from __future__ import annotations

import argparse
import sys

from bench import report, runner
from bench.context import REPO, Settings
from bench.scenarios import registry


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    names = list(registry())
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smoke run: smaller sizes, 1 round (< 3 minutes)")
    parser.add_argument(
        "--only",
        action="append",
        choices=names,
        metavar="SCENARIO",
        help=f"run only this scenario (repeatable): {', '.join(names)}",
    )
    parser.add_argument("--rounds", type=int, default=None, help="rounds per scenario (default: quick 1, full 3)")
    parser.add_argument(
        "--no-merge",
        action="store_true",
        help="with --only: only print the tables (by default the scenarios replace theirs in latest.json, which must "
        "be of the same mode, and BENCHMARKS.md is regenerated with every scenario)",
    )
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="regenerate BENCHMARKS.md and plots from bench/results/latest.json, run nothing",
    )
    args = parser.parse_args(argv)
    if args.report_only:
        data = runner.load_latest()
    else:
        selected = [n for n in names if n in (args.only or names)]
        data = runner.run(selected, Settings.for_mode(args.quick, args.rounds), argv)
        path = runner.save(data, complete=not args.only)
        print(f"results: {path.relative_to(REPO)}")
        if args.only:
            print(report.render_tables(data))
            if args.no_merge:
                return 0
            merged, why = runner.merge_into_latest(data)
            if merged is None:
                print(f"BENCHMARKS.md left as it was: {why}")
                return 0
            data = merged
    out = report.write(data)
    print(f"report: {out.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
