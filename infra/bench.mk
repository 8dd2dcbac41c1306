# Benchmarks (method and figures: infra/bench/RESULTS.md), included from the root Makefile with `-include infra/bench.mk`. Run from the repo root.
#
#   make bench         the gateway against the simulator directly: non-stream chat at concurrency 1/16/64,
#                      streaming (20 chunks, 20 ms apart) at 1/64, cold start of each functions/<name> handler
#   make bench-peers   the same plus LiteLLM's proxy (installed once into ~/.cache/aigateway-bench/litellm-venv)
#
# Needs 2 cores, taskset (util-linux) and, preferably, wrk (Debian: apt-get install -y wrk); without wrk an
# asyncio client is used and the JSON says so. Figures go to bench-results/ (git-ignored) and the terminal;
# infra/bench/RESULTS.md holds the latest ones. BENCH_ARGS passes options, e.g. BENCH_ARGS="--duration 5".

BENCH_ARGS ?=

.PHONY: bench bench-peers

bench: $(VENV)/.run-installed
	$(BIN)/python infra/bench/run.py $(BENCH_ARGS)

bench-peers: $(VENV)/.run-installed
	$(BIN)/python infra/bench/run.py --peers $(BENCH_ARGS)

## Cold starts through the Lambda harness (tests/lambda_runtime/bench_coldstart.py): each function's
## Init Duration + first request beside a FastAPI hello world from the same layer. AIGW_BENCH_RUNS=5.
.PHONY: bench-lambda
bench-lambda: $(VENV)/.dev-installed
	$(BIN)/python -m pytest -q -s -p no:cacheprovider tests/lambda_runtime/bench_coldstart.py
