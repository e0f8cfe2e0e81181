"""`python manage.py mqtt_credentials`: write Mosquitto's password and ACL files."""
from __future__ import annotations

import os
import signal
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from hub_bridge.broker_config import ROLES, ServiceAccount, render_files, write_atomically
from hub_bridge.mqtt import parse_url


class Command(BaseCommand):
    help = ("Write the Mosquitto password file (hub accounts + cloud accounts, $7$ hashes) and the ACL file "
            "(each hub only its own topics). Cloud accounts come from MQTT_URL (relay) and MQTT_LISTENER_URL "
            "(listener) unless given with --service. With --service-password-file and --service-acl-file the "
            "cloud accounts go there and the first pair holds only hubs: one pair per listener, so the hubs' "
            "listener can force client id = username (see docker/mosquitto/mosquitto.conf).")

    def add_arguments(self, parser):
        parser.add_argument("--password-file", required=True)
        parser.add_argument("--acl-file", required=True)
        parser.add_argument("--service-password-file", help="Cloud accounts' password file (their own listener).")
        parser.add_argument("--service-acl-file", help="Cloud accounts' ACL file (with --service-password-file).")
        parser.add_argument("--service", action="append", default=[], metavar="USER:SECRET:ROLE[,ROLE]",
                            help=f"Cloud account; roles: {', '.join(ROLES)}. Repeatable.")
        parser.add_argument("--prefix", default=None, help="Topic prefix (default MQTT_TOPIC_PREFIX).")
        parser.add_argument("--reload-pid", type=int, help="Send SIGHUP to this mosquitto so it rereads the files.")

    def handle(self, *args, **opts):
        services = [self._parse_service(s) for s in opts["service"]]
        if not opts["service"]:
            for url, role in ((settings.MQTT_URL, "relay"), (settings.MQTT_LISTENER_URL or settings.MQTT_URL, "listener")):
                if url:
                    a = parse_url(url)
                    if a.username and a.password:
                        services.append(ServiceAccount(a.username, a.password, (role,)))
        split = (opts["service_password_file"], opts["service_acl_file"])
        if any(split) and not all(split):
            raise CommandError("--service-password-file and --service-acl-file go together")
        prefix = opts["prefix"] or settings.MQTT_TOPIC_PREFIX
        try:
            files = render_files(prefix, services)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        if all(split):
            passwords, acl = files.hub_passwords, files.hub_acl
            write_atomically(Path(opts["service_password_file"]), files.service_passwords)
            write_atomically(Path(opts["service_acl_file"]), files.service_acl)
        else:
            passwords, acl = files.combined()
        write_atomically(Path(opts["password_file"]), passwords)
        write_atomically(Path(opts["acl_file"]), acl)
        skipped = files.skipped
        for hub_id in skipped:
            self.stderr.write(f"skipped hub {hub_id!r}: its id or username cannot be used in topics/ACL")
        if opts["reload_pid"]:
            os.kill(opts["reload_pid"], signal.SIGHUP)
        written = passwords.count(chr(10)) + (files.service_passwords.count(chr(10)) if all(split) else 0)
        self.stdout.write(f"wrote {written} accounts to {opts['password_file']} and {opts['acl_file']}"
                          + (f" (cloud accounts to {split[0]} and {split[1]})" if all(split) else ""))

    @staticmethod
    def _parse_service(value: str) -> ServiceAccount:
        try:
            user, secret, roles = value.split(":", 2)
        except ValueError:
            raise CommandError(f"--service {value!r}: expected USER:SECRET:ROLE") from None
        roles_t = tuple(r for r in roles.split(",") if r)
        if not user or not secret or not roles_t or set(roles_t) - set(ROLES):
            raise CommandError(f"--service {value!r}: roles must be among {ROLES}")
        return ServiceAccount(user, secret, roles_t)
