"""Settings from environment variables, in the manner of cookiecutter-django.

Every setting has a documented default suitable for the embedded local run
(SQLite, tasks in-process). Production sets DJANGO_ENV=production, which
refuses to start without SECRET_KEY and turns on the secure defaults.
"""
from __future__ import annotations

import warnings
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()

DJANGO_ENV = env.str("DJANGO_ENV", default="development")  # development | test | production
PRODUCTION = DJANGO_ENV == "production"
# energy_manager.clock: a simulated clock (a Redis URL) for the closed-loop simulation only; never in production.
if PRODUCTION and env.str("HEMS_SIMULATED_CLOCK", default=""):
    raise ImproperlyConfigured("HEMS_SIMULATED_CLOCK (the simulation's clock) must not be set when DJANGO_ENV=production")

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if PRODUCTION:
        raise ImproperlyConfigured("SECRET_KEY must be set when DJANGO_ENV=production")
    SECRET_KEY = "insecure-development-only-key-do-not-use-in-production-0123456789"
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=[] if PRODUCTION else ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI and ReDoc as static files: the docs work offline
    "django_celery_beat",
    "health_check",
    "django_prometheus",
    # Parts, bottom layer first; dependencies run one way (see .importlinter).
    "devices",
    "hub_bridge",
    "flexibility.forecasting",
    "flexibility.notifications",
    "flexibility.planning",
    "flexibility.grid",
    "tasks",
    "insights",
    "webapp",
    "demo",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",  # static files (admin, charts, API docs) from every role
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "energy_manager.api_errors.BrokerOutageMiddleware",
    "energy_manager.api_errors.RejectNullCharactersMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "energy_manager.urls"
WSGI_APPLICATION = "energy_manager.wsgi.application"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

# Database: embedded default is a SQLite file; tests and production use PostgreSQL.
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
DATABASES["default"]["ATOMIC_REQUESTS"] = True
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# Request bodies: Django answers larger ones with 413 and the API's error body (energy_manager.api_errors).
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=2_621_440)

# Cache: holds the API's throttle counters, so every web process must share it (Redis). Default: the Celery
# broker when it is Redis, else process memory (embedded demo). CACHE_URL e.g. redis://localhost:6379/1.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="")
CACHES = {"default": env.cache("CACHE_URL", default=CELERY_BROKER_URL if CELERY_BROKER_URL.startswith("redis")
                               else "locmemcache://")}
CACHES["default"].setdefault("KEY_PREFIX", "hems")

EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="hems@localhost")

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
]
# Serve static files straight from the apps and packages (no collectstatic step needed to run a role).
WHITENOISE_USE_FINDERS = True
# Vendored files carry their version in their name (vendor/plotly-basic-4.1.1.min.js): cached for good.
WHITENOISE_IMMUTABLE_FILE_TEST = r"/vendor/[^/]+-\d+\.\d+\.\d+\.min\.js$"
warnings.filterwarnings("ignore", message="No directory at", module="whitenoise.base")  # STATIC_ROOT is optional
LOGIN_URL = "webapp:login"
LOGIN_REDIRECT_URL = "webapp:home"
LOGOUT_REDIRECT_URL = "webapp:login"

# --- REST API -------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "energy_manager.authentication.JWTAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": env.int("API_PAGE_SIZE", default=50),
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_SCHEMA_CLASS": "energy_manager.api_schema.AutoSchema",
    "EXCEPTION_HANDLER": "energy_manager.api_errors.exception_handler",
    "DEFAULT_PARSER_CLASSES": ["energy_manager.api_input.SafeJSONParser"],  # a JSON API: no form bodies
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    "NUM_PROXIES": env.int("NUM_PROXIES", default=None),  # trusted proxies adding X-Forwarded-For
    # Throttle counters are in the cache (Redis): per client address for registration and tokens, per user for
    # optimization requests (each can hold a worker for its solver time limit).
    "DEFAULT_THROTTLE_RATES": {
        "registration": env.str("THROTTLE_REGISTRATION_RATE", default="10/hour"),
        "token": env.str("THROTTLE_TOKEN_RATE", default="30/minute"),
        "solve": env.str("THROTTLE_SOLVE_RATE", default="20/hour"),
    },
}
SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env.int("JWT_ACCESS_MINUTES", default=30)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env.int("JWT_REFRESH_DAYS", default=14)),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "HEMS energy manager API",
    "DESCRIPTION": "Home energy management: households, devices, optimization, grid flexibility.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},  # no call to the online spec validator
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "SignalKindEnum": "devices.models.SignalKind",
        "TariffKindEnum": "devices.models.TariffKind",
        "DeviceTypeEnum": "devices.models.DeviceType",
        "CycleStateEnum": "devices.models.CycleState",
        "RunStatusEnum": "flexibility.planning.models.RunStatus",
        "RecommendationStatusEnum": "flexibility.planning.models.RecommendationStatus",
        "CommandStateEnum": "hub_bridge.models.CommandState",
        "ActivationStatusEnum": "flexibility.grid.models.ActivationStatus",
        "ShareStatusEnum": "flexibility.grid.models.ShareStatus",
    },
}

# --- Celery ---------------------------------------------------------------
# Unset CELERY_BROKER_URL (read above) = embedded mode: tasks run in-process (eagerly).
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_RESULT_BACKEND = None  # Postgres is the source of truth; no result backend.
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {
    "tasks.flex.freeze_due_offers": {"queue": "default"},  # cheap bookkeeping, before the tasks.flex.* glob
    "tasks.optimization.*": {"queue": "optimization"},
    "tasks.periodic.day_ahead_chunk": {"queue": "optimization"},  # builds, solves and stores a chunk of homes
    "tasks.flex.*": {"queue": "optimization"},
    "tasks.hub.*": {"queue": "hub"},
}
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT_S", default=3600)}
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = "UTC"

# Optimization knobs
OPTIMIZER_BACKEND = env.str("OPTIMIZER_BACKEND", default="auto")
OPTIMIZER_TIME_LIMIT_S = env.float("OPTIMIZER_TIME_LIMIT_S", default=10.0)
OPTIMIZATION_DEDUP_WINDOW_S = env.int("OPTIMIZATION_DEDUP_WINDOW_S", default=300)
OPTIMIZATION_STUCK_AFTER_S = env.int("OPTIMIZATION_STUCK_AFTER_S", default=600)
OPTIMIZATION_MAX_ATTEMPTS = env.int("OPTIMIZATION_MAX_ATTEMPTS", default=3)
OPTIMIZATION_REOPTIMIZE_DEBOUNCE_S = env.int("OPTIMIZATION_REOPTIMIZE_DEBOUNCE_S", default=60)  # re-plan triggers per home
# A re-plan keeps the activation shares the home was planned to follow as soft bounds at this price per kWh
# outside them: far above any tariff, so kept whenever the devices allow, without leaving the home unplanned.
ACTIVATION_REPLAN_PENALTY_EUR_PER_KWH = env.float("ACTIVATION_REPLAN_PENALTY_EUR_PER_KWH", default=10.0)
DAY_AHEAD_LOCAL_TIME = env.str("DAY_AHEAD_LOCAL_TIME", default="18:00")
FLEX_GATE_CLOSURE_LOCAL_TIME = env.str("FLEX_GATE_CLOSURE_LOCAL_TIME", default="23:30")

# --- Telemetry storage (devices.telemetry) --------------------------------------
TELEMETRY_RAW_RETENTION_DAYS = env.int("TELEMETRY_RAW_RETENTION_DAYS", default=90)  # roll-ups are kept
# 15-minute roll-ups: whole months older than this are dropped (0 keeps them for ever); daily roll-ups stay.
TELEMETRY_ROLLUP_RETENTION_MONTHS = env.int("TELEMETRY_ROLLUP_RETENTION_MONTHS", default=60)
TELEMETRY_PARTITIONS_AHEAD_DAYS = env.int("TELEMETRY_PARTITIONS_AHEAD_DAYS", default=7)

# --- Inputs: importers and forecasting ----------------------------------------
# Who besides households and operators may call the signals API: the service-account key scheme.
SIGNAL_WRITER_AUTHENTICATION = ["flexibility.grid.service_auth.ServiceAccountAuthentication"]
# Day-ahead runs and re-plans forecast again unless the home's forecasts are younger than this.
FORECAST_REFRESH_MIN_AGE_S = env.int("FORECAST_REFRESH_MIN_AGE_S", default=3600)
SIGNAL_IMPORT_DIR = env.str("SIGNAL_IMPORT_DIR", default="")  # drop folder read by the periodic importer; empty = off
REFERENCE_DATA_FILE = env.str(
    "REFERENCE_DATA_FILE", default=str(BASE_DIR.parent / "shared" / "reference" / "flexihome-default-data.json"))

# Rolling re-planning: how often homes are checked against their plan, and what counts as leaving it.
ROLLING_TICK_MINUTES = env.int("ROLLING_TICK_MINUTES", default=15)
ROLLING_CHUNK_SIZE = env.int("ROLLING_CHUNK_SIZE", default=500)  # homes per chunk task
ROLLING_MAX_REPLANS_PER_CHUNK = env.int("ROLLING_MAX_REPLANS_PER_CHUNK", default=200)
ROLLING_SOC_THRESHOLD_PCT = env.float("ROLLING_SOC_THRESHOLD_PCT", default=10.0)
ROLLING_TANK_THRESHOLD_KWH = env.float("ROLLING_TANK_THRESHOLD_KWH", default=1.0)  # hot water off the plan
ROLLING_LOAD_THRESHOLD_W = env.float("ROLLING_LOAD_THRESHOLD_W", default=500.0)
ROLLING_LOAD_THRESHOLD_SHARE = env.float("ROLLING_LOAD_THRESHOLD_SHARE", default=0.5)

# --- Periodic tasks -------------------------------------------------------------
# The one declaration of the beat schedule. `manage.py sync_periodic_tasks` (also run after every
# `migrate`) creates the django-celery-beat row of each entry that is missing; it never changes an
# existing row, so what an operator edits in the admin (Periodic tasks) stays. Not named
# CELERY_BEAT_SCHEDULE on purpose: django-celery-beat would overwrite the rows from it at beat start.
PERIODIC_TASKS = {
    "Day-ahead optimization of opted-in homes": {
        # :00/:15/:30/:45 UTC, aligned with every whole-, half- and quarter-hour zone offset; each tick
        # starts the homes whose local DAY_AHEAD_LOCAL_TIME has passed.
        "task": "tasks.periodic.day_ahead", "queue": "default", "crontab": {"minute": "*/15", "hour": "*"},
    },
    "Re-send stuck optimization runs": {
        "task": "tasks.periodic.reap_stuck_runs", "queue": "default", "every": (60, "seconds"),
    },
    "Freeze flexibility offers at gate closure": {
        "task": "tasks.flex.freeze_due_offers", "queue": "default", "every": (1, "minutes"),
    },
    "Hub relay sweep: resend, expire, fail unreported commands": {
        "task": "tasks.hub.relay_sweep", "queue": "hub", "every": (30, "seconds"),
    },
    "Telemetry storage: partitions ahead, retention of raw rows": {
        "task": "tasks.telemetry.maintain_storage", "queue": "default", "every": (1, "hours"),
    },
    "Telemetry storage: daily roll-ups of today and yesterday": {
        "task": "tasks.telemetry.roll_up_days", "queue": "default", "every": (15, "minutes"),
    },
    "Rolling re-planning: homes whose measured state left their plan": {
        "task": "tasks.planning.rolling_tick", "queue": "default", "every": (ROLLING_TICK_MINUTES, "minutes"),
    },
    "Import price and CO2 documents from the drop folder": {
        "task": "tasks.inputs.import_signal_folder", "queue": "default", "every": (5, "minutes"),
    },
    "Score yesterday's forecasts against what was measured": {
        "task": "tasks.inputs.score_forecasts", "queue": "default", "crontab": {"minute": "20", "hour": "3"},
    },
}

# --- MQTT hub bridge --------------------------------------------------------
MQTT_URL = env.str("MQTT_URL", default="")  # e.g. mqtt://bridge:secret@localhost:1883
MQTT_TOPIC_PREFIX = env.str("MQTT_TOPIC_PREFIX", default="hems")
MQTT_LISTENER_URL = env.str("MQTT_LISTENER_URL", default="")  # listener account; empty = MQTT_URL
MQTT_LISTENER_GROUP = env.str("MQTT_LISTENER_GROUP", default="hems-listeners")  # shared-subscription group
MQTT_COMMAND_RESEND_S = env.float("MQTT_COMMAND_RESEND_S", default=30.0)  # resend unacknowledged commands
MQTT_PUBACK_TIMEOUT_S = env.float("MQTT_PUBACK_TIMEOUT_S", default=5.0)
MQTT_MAX_PAYLOAD_BYTES = env.int("MQTT_MAX_PAYLOAD_BYTES", default=256 * 1024)
MQTT_RELAY_BATCH = env.int("MQTT_RELAY_BATCH", default=2000)  # commands published per relay pass
MQTT_RELAY_LINGER_S = env.float("MQTT_RELAY_LINGER_S", default=1.0)  # relay keeps polling this long after work
MQTT_EXECUTION_GRACE_S = env.float("MQTT_EXECUTION_GRACE_S", default=300.0)  # accepted, unreported past expiry+this: failed

# --- Operations -------------------------------------------------------------------
# /metrics: with a token, Prometheus sends `Authorization: Bearer <METRICS_TOKEN>`; without one,
# production serves metrics to staff sessions only (development serves them to anyone).
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")

# --- Security -----------------------------------------------------------------
if PRODUCTION:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    # Load balancers and Prometheus probe the web role directly over the internal network.
    SECURE_REDIRECT_EXEMPT = [r"^health/$", r"^metrics$"]
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_CONTENT_TYPE_NOSNIFF = True
    X_FRAME_OPTIONS = "DENY"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
}
