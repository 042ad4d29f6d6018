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
        "--write-report",
        action="store_true",
        help="with --only: still regenerate BENCHMARKS.md (by default only full runs do)",
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
    if args.report_only or not args.only or args.write_report:
        out = report.write(data)
        print(f"report: {out.relative_to(REPO)}")
    else:
        print(report.render_tables(data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
