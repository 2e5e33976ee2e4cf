# Set-up and the two everyday jobs: `make demo` and `make test`.
# Both create .venv and install what ncc needs (apt, then pip) on first use; both are idempotent.

VENV    ?= .venv
PYTHON  ?= python3
PY      := $(VENV)/bin/python
NCC     := $(VENV)/bin/ncc
STAMP   := $(VENV)/.ncc-installed
APT_PACKAGES := $(shell grep -E '^[a-z0-9]' .ci/apt-packages.txt 2>/dev/null)
DEMO    ?= demo

.PHONY: setup demo test clean apt

setup: $(STAMP)

$(STAMP): setup.cfg pyproject.toml .ci/apt-packages.txt
	$(MAKE) apt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# the CPU wheel of torch (a bare `torch` would pull a multi-GB CUDA build)
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[test]'
	touch $@

apt:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  sudo=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$sudo apt-get update -q && $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	fi

demo: $(STAMP)
	mkdir -p $(DEMO)
	$(NCC) zoo vgg11 --dataset cifar10 -o $(DEMO)/vgg11.onnx --force
	$(NCC) inspect $(DEMO)/vgg11.onnx
	$(NCC) compile $(DEMO)/vgg11.onnx -o $(DEMO)/vgg11.host --target host --verify --force
	$(NCC) bench $(DEMO)/vgg11.host --iterations 100 --warmup 10 --json $(DEMO)/vgg11.host.results.json
	$(NCC) compile $(DEMO)/vgg11.onnx -o $(DEMO)/vgg11.ort --target onnxruntime --force
	$(NCC) bench $(DEMO)/vgg11.ort --iterations 100 --warmup 10 --json $(DEMO)/vgg11.ort.results.json

test: $(STAMP)
	$(PY) -m pytest -q

clean:
	rm -rf $(DEMO) build *.egg-info
