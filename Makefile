# The two commands of the README: `make demo` and `make test`. Each installs what is missing first.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
WPGATE_CACHE ?= $(HOME)/.cache/wpgate
export WPGATE_CACHE
WP_BUILDS_PACKAGE := @wp-playground/wordpress-builds@0.9.19
WP_BUILDS := $(WPGATE_CACHE)/npm/wp-playground-wordpress-builds-0.9.19.tgz

# PHP and its extensions WordPress needs, MariaDB, the web servers and caches of the test bed, sshd
# for the ssh transport, Debian's WordPress 6.1.9 with its default themes, the tools the
# transports call on a host, openssl (test certificates), Chromium (driven by Playwright to render
# reports and screenshots), restic (backups with `engine: restic`) and redis-server (the broker of rollouts
# with `engine: celery`).
DEBIAN_PACKAGES := \
	php-cli php-fpm php-mysql php-xml php-mbstring php-curl php-zip php-gd php-intl \
	mariadb-server mariadb-client nginx varnish openssh-server openssh-client \
	wordpress wordpress-theme-twentytwentythree wordpress-theme-twentytwentytwo \
	zip unzip rsync curl coreutils openssl chromium restic redis-server

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# The installers' own output (apt-get, dpkg, npm, pip) goes to this log; the terminal gets one line per
# step, and the log's path and last lines when a step fails.
INSTALL_LOG := $(CURDIR)/build/install.log
STEP = step() { label=$$1; shift; mkdir -p "$(dir $(INSTALL_LOG))"; printf '%s … ' "$$label"; \
	printf '\n== %s: %s\n' "$$(date -u +%FT%TZ)" "$$*" >> "$(INSTALL_LOG)"; \
	start=$$(wc -l < "$(INSTALL_LOG)"); \
	if "$$@" >> "$(INSTALL_LOG)" 2>&1 < /dev/null; then echo done; \
	else status=$$?; echo "failed (exit $$status): the installer's output is in $(INSTALL_LOG)"; \
		tail -n "+$$((start + 1))" "$(INSTALL_LOG)" | tail -n 15 | sed 's/^/  | /'; return $$status; fi; }

# The suite runs in parallel processes (pytest-xdist, a test module per process at a time), with
# its sites, databases and run folders in a scratch folder on tmpfs where there is one: the test
# bed copies and reads WordPress's thousands of small files many times over.
TEST_WORKERS ?= 4
TEST_TMP ?= $(shell [ -d /dev/shm ] && [ -w /dev/shm ] && echo /dev/shm || echo /tmp)
PYTEST := $(PY) -m pytest -q -p no:cacheprovider --durations=15

.PHONY: test test-crash demo deps bytecode system-packages wordpress-builds python-env clean


test: deps bytecode
	@scratch=$$(mktemp -d $(TEST_TMP)/wpgate-tests.XXXXXX) && \
	TMPDIR=$$scratch $(PYTEST) -n $(TEST_WORKERS) --dist loadgroup --no-loadscope-reorder $(PYTEST_ARGS); \
	status=$$?; rm -rf "$$scratch"; exit $$status

# The crash matrices killed at every journal event, not a sample (see tests/README.md).
test-crash: deps bytecode
	@scratch=$$(mktemp -d $(TEST_TMP)/wpgate-tests.XXXXXX) && \
	WPGATE_CRASH_FULL=1 TMPDIR=$$scratch $(PYTEST) -n 2 --dist loadgroup --no-loadscope-reorder \
		tests/e2e/test_crash.py tests/e2e/test_crash_ssh.py $(PYTEST_ARGS); \
	status=$$?; rm -rf "$$scratch"; exit $$status

demo: deps bytecode
	$(VENV)/bin/wpgate demo

deps: system-packages wordpress-builds python-env

# Each test starts wpgate as a new process some thousand times; without compiled modules (an
# environment with PYTHONDONTWRITEBYTECODE set) each one compiles wpgate's source again.
bytecode: python-env
	@$(PY) -m compileall -q src tests > /dev/null

system-packages:
	@missing=""; for package in $(DEBIAN_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$package 2>/dev/null | grep -q "ok installed" || missing="$$missing $$package"; \
	done; \
	command -v npm > /dev/null || missing="$$missing nodejs npm"; \
	if [ -n "$$missing" ]; then \
		$(STEP); \
		step "updating the Debian package lists (apt-get update)" $(SUDO) apt-get update && \
		step "installing Debian packages:$$missing" $(SUDO) env DEBIAN_FRONTEND=noninteractive \
			apt-get install -y --no-install-recommends $$missing; \
	fi

wordpress-builds: $(WP_BUILDS)

$(WP_BUILDS):
	@mkdir -p $(dir $@)
	@$(STEP); cd $(dir $@) && step "downloading the WordPress builds (npm pack $(WP_BUILDS_PACKAGE), 158 MB)" \
		npm pack $(WP_BUILDS_PACKAGE)
	@test -s $@ || { echo "npm pack wrote no $@: see $(INSTALL_LOG)"; exit 1; }

python-env: $(VENV)/.installed

# uv installs the same packages pip would, from PyPI, in about 15 seconds where pip takes about a minute.
# Compiled up front, as pip does: where PYTHONDONTWRITEBYTECODE is set, nothing else would compile them,
# and every process of the suite would compile its imports again.
$(VENV)/.installed: pyproject.toml
	@$(STEP); step "creating the Python environment $(VENV)" $(PYTHON) -m venv $(VENV) && \
		step "installing uv, the installer (pip install uv)" $(PY) -m pip install uv && \
		step "installing wpgate and its test dependencies (uv pip install -e .[test])" \
			$(PY) -m uv pip install --compile-bytecode --python $(PY) -e '.[test]'
	@touch $@

clean:
	rm -rf $(VENV) build src/*.egg-info
