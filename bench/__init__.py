"""llmplex benchmark harness: llmplex against LiteLLM 1.108.7, side by side, on one machine.

Run ``python -m bench`` (full) or ``python -m bench --quick`` from the repository root. Results land in
``bench/results/`` (JSON, git-ignored), ``BENCHMARKS.md`` and ``bench/plots/*.png``. Nothing here is a
runtime dependency of the ``llmplex`` package; LiteLLM lives in its own virtual environment.
"""
