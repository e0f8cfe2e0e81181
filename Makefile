# The two commands: `make run` (local demo) and `make test` (the whole suite on real services).
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/hems
TEST_REDIS_URL ?= redis://127.0.0.1:6379/0
TEST_MQTT_URL ?= mqtt://127.0.0.1:1883
PORT ?= 8000
ADDRESS ?= 0.0.0.0
BASE_VENV := .venv-base

.PHONY: run test install install-test base-venv migrate seed web worker hub-worker beat flower listener simulator bench clean

$(VENV)/bin/activate:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

$(VENV)/.base: requirements/base.txt | $(VENV)/bin/activate
	$(PIP) install -q -r requirements/base.txt
	touch $@

$(VENV)/.test: requirements/test.txt requirements/base.txt | $(VENV)/bin/activate
	$(PIP) install -q -r requirements/test.txt
	touch $@ $(VENV)/.base

install: $(VENV)/.base
install-test: $(VENV)/.test

# A venv from requirements/base.txt alone (what the Dockerfile installs): the production-parity
# test starts every role from it. Rebuilt from scratch when base.txt changes.
base-venv:
	@if [ ! -f $(BASE_VENV)/.base ] || [ requirements/base.txt -nt $(BASE_VENV)/.base ]; then rm -rf $(BASE_VENV); fi
	@$(MAKE) --no-print-directory install VENV=$(BASE_VENV)

migrate: install
	$(PY) manage.py migrate --noinput

seed: migrate
	$(PY) manage.py seed_demo

## run: local demo on the embedded SQLite database, tasks in-process.
run: seed
	@echo ""
	@echo "  API:     http://127.0.0.1:$(PORT)/api/v1/"
	@echo "  Docs:    http://127.0.0.1:$(PORT)/api/docs/"
	@echo "  Admin:   http://127.0.0.1:$(PORT)/admin/"
	@echo "  Login:   demo@example.com / demo-password-2026 (household), operator@example.com / operator-password-2026 (admin)"
	@echo ""
	DEBUG=1 $(PY) manage.py runserver 127.0.0.1:$(PORT)

## test: the import contracts (.importlinter), then the whole suite against PostgreSQL, Redis, Celery workers and Mosquitto.
test: install-test base-venv
	$(VENV)/bin/lint-imports
	@bash scripts/ensure_services.sh
	@bash scripts/ensure_browser.sh
	HYPOTHESIS_PROFILE=ci DJANGO_ENV=test DATABASE_URL=$(TEST_DATABASE_URL) CACHE_URL=$(TEST_REDIS_URL) TEST_REDIS_URL=$(TEST_REDIS_URL) TEST_MQTT_URL=$(TEST_MQTT_URL) \
		BASE_VENV=$(CURDIR)/$(BASE_VENV) \
		$(PY) -m pytest $(PYTEST_ARGS)

# --- Roles (production-like; set DATABASE_URL, CELERY_BROKER_URL, MQTT_URL; README "Running in production") ---
web: install
	$(VENV)/bin/gunicorn energy_manager.wsgi:application -c energy_manager/gunicorn_conf.py --bind $(ADDRESS):$(PORT) --workers 2
worker: install
	$(VENV)/bin/celery -A energy_manager worker -Q optimization,default -c $$(nproc) --prefetch-multiplier 1 -n optimization@%h
hub-worker: install
	$(VENV)/bin/celery -A energy_manager worker -Q hub -c 1 -n hub@%h
beat: install
	$(VENV)/bin/celery -A energy_manager beat -l INFO -S django_celery_beat.schedulers:DatabaseScheduler
flower: install
	$(VENV)/bin/celery -A energy_manager flower --conf=energy_manager/flowerconfig.py
listener: install
	$(PY) manage.py hub_listener

clean:
	rm -rf $(VENV) $(BASE_VENV) db.sqlite3 .pytest_cache .hypothesis
