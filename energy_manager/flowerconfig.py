"""Flower's settings (`celery -A energy_manager flower --conf=energy_manager/flowerconfig.py`).

Flower itself reads FLOWER_PORT, FLOWER_ADDRESS and FLOWER_BASIC_AUTH (`user:password`,
comma-separated for several). This file binds to 127.0.0.1 unless FLOWER_ADDRESS says
otherwise, and refuses to start without authentication when DJANGO_ENV=production.
"""
import os

from tornado.options import options

if not os.environ.get("FLOWER_ADDRESS") and not options.address:
    address = "127.0.0.1"

if os.environ.get("DJANGO_ENV") == "production" and not (options.basic_auth or options.auth):
    raise SystemExit("flower: refusing to start without authentication in production; "
                     "set FLOWER_BASIC_AUTH=user:password")
