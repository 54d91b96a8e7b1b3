# fedgate: `make demo` and `make test` set everything up on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: demo demo-servers test test-full lint typecheck unit bench clean servers browser

# Start a service that is installed but stopped; stop at once, naming what is missing, if it is not installed.
define need_postgres
	@pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null || { \
	  test -d /etc/postgresql || { echo "fedgate: PostgreSQL is not installed: apt-get install -y postgresql"; exit 1; }; \
	  pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql) main start; \
	  for i in $$(seq 50); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 0.2; done; \
	  pg_isready -q -h 127.0.0.1 -p 5432 || { echo "fedgate: PostgreSQL did not start on 127.0.0.1:5432"; exit 1; }; }
endef
define need_mariadb
	@mariadb-admin --protocol=tcp -h 127.0.0.1 -P 3306 -u root ping >/dev/null 2>&1 || { \
	  test -x /usr/sbin/mariadbd || { echo "fedgate: MariaDB is not installed: apt-get install -y mariadb-server"; exit 1; }; \
	  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd; \
	  for i in $$(seq 50); do mariadb-admin --protocol=tcp -h 127.0.0.1 -u root ping >/dev/null 2>&1 && break; sleep 0.2; done; \
	  mariadb-admin --protocol=tcp -h 127.0.0.1 -u root ping >/dev/null 2>&1 || { echo "fedgate: MariaDB did not start on 127.0.0.1:3306"; exit 1; }; }
endef

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

# The demo's ports: make demo PORT=8200 ISSUER_PORT=8201 HOUSING_PORT=8202 runs beside another demo.
PORT         ?= 8000
ISSUER_PORT  ?= 8001
HOUSING_PORT ?= 8002
DEMO_PORTS   := --port $(PORT) --issuer-port $(ISSUER_PORT) --housing-port $(HOUSING_PORT)

demo: $(STAMP)
	$(BIN)/fedgate demo $(DEMO_PORTS)

demo-servers: $(STAMP) servers
	$(BIN)/fedgate demo $(DEMO_PORTS) --backends postgres,mariadb

test: lint typecheck unit

# The tests use the machine's PostgreSQL and MariaDB, and Debian's Chromium for the GraphiQL browser test.
servers:
	$(need_postgres)
	$(need_mariadb)

browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  command -v apt-get >/dev/null 2>&1 || { echo "fedgate: Chromium is missing: install Debian's chromium package"; exit 1; }; \
	  echo "fedgate: installing Debian's chromium for the browser tests"; \
	  { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; } || \
	    { echo "fedgate: Chromium is missing and could not be installed: apt-get install -y chromium"; exit 1; }; }

lint: $(STAMP)
	$(BIN)/ruff check gateway adapters schema demo bench tests
	$(BIN)/ruff format --check gateway adapters schema demo bench tests

typecheck: $(STAMP)
	$(BIN)/mypy

# The tests run on every core (pytest-xdist); each worker makes its own uniquely named databases.
unit: $(STAMP) servers browser
	$(BIN)/pytest -q -n auto

# The property tests at the full count they were proven with (2,000 SQLite examples; 500 per server).
test-full: $(STAMP) servers browser
	FEDGATE_PROPERTY_EXAMPLES=2000 $(BIN)/pytest -q -n auto

bench: $(STAMP)
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) demo/data .pytest_cache .mypy_cache .ruff_cache
