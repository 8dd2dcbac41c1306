# The layer's hashed lock, included from the root Makefile with `-include infra/lock.mk`.
#
#   make lock          re-resolve layers/gateway/requirements.lock from requirements.txt, keeping
#                      every pin that still satisfies it (run after editing requirements.txt)
#   make lock-upgrade  the same, but every package moves to its newest allowed version
#   make lock-check    fail if the lock does not satisfy requirements.txt (nothing is written)
#
# The lock resolves for the Lambda runtime (CPython 3.12, manylinux, glibc 2.34) whatever machine
# runs uv, and carries the sha256 of every wheel of each pinned version, so one lock serves the
# arm64 and the x86_64 layer. The resolution is made for both architectures and must agree.
# uv comes from infra/requirements-ci.txt (`make install`); UV=... picks another executable.

UV ?= $(if $(wildcard $(BIN)/uv),$(BIN)/uv,uv)
LOCK_INPUT ?= layers/gateway/requirements.txt
LOCK_FILE ?= layers/gateway/requirements.lock
LOCK_PYTHON_VERSION ?= 3.12
LOCK_PLATFORMS ?= aarch64-manylinux_2_34 x86_64-manylinux_2_34
LOCK_FLAGS = --quiet --generate-hashes --python-version $(LOCK_PYTHON_VERSION) \
	--custom-compile-command "make lock" --index-url https://pypi.org/simple --no-config

.PHONY: lock lock-upgrade lock-check

lock:
	$(UV) pip compile $(LOCK_FLAGS) --python-platform $(firstword $(LOCK_PLATFORMS)) \
		$(LOCK_UPGRADE) -o $(LOCK_FILE) $(LOCK_INPUT)
	@$(MAKE) --no-print-directory lock-check

lock-upgrade:
	@$(MAKE) --no-print-directory lock LOCK_UPGRADE=--upgrade

# Each platform's resolution, seeded with the lock's pins, must reproduce the lock exactly.
lock-check:
	@set -e; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	for p in $(LOCK_PLATFORMS); do \
		cp $(LOCK_FILE) "$$tmp/$$p.txt"; \
		$(UV) pip compile $(LOCK_FLAGS) --python-platform $$p -o "$$tmp/$$p.txt" $(LOCK_INPUT); \
		if ! diff -u $(LOCK_FILE) "$$tmp/$$p.txt"; then \
			echo "$(LOCK_FILE) is stale or differs for $$p: run make lock" >&2; exit 1; fi; \
	done; echo "$(LOCK_FILE) satisfies $(LOCK_INPUT) on $(LOCK_PLATFORMS)"
