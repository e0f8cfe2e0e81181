"""Admin pages for records the system writes (runs, schedules, commands, offers, ...): view only.

Nobody adds or edits them by hand, since that would bypass the services that keep them consistent; deleting
stays possible, so that deleting a home still removes its records. Large JSON shows as indented text.
"""
from __future__ import annotations

import json
import re
from typing import Any

from django.contrib import admin
from django.utils.html import format_html

MAX_JSON_CHARS = 20_000


class ReadOnlyRecordAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


def pretty_json(value: Any) -> str:
    """Indented JSON in a scrollable box (cut after MAX_JSON_CHARS characters)."""
    text = json.dumps(value, indent=1, sort_keys=True, default=str)
    text = re.sub(r"\[\s+([^\[\]{}]*?)\s+\]", lambda m: "[" + " ".join(m.group(1).split()) + "]", text)  # lists inline
    if len(text) > MAX_JSON_CHARS:
        text = text[:MAX_JSON_CHARS] + f"\n... ({len(text) - MAX_JSON_CHARS} more characters)"
    return format_html('<pre style="max-height: 24em; overflow: auto; white-space: pre-wrap;">{}</pre>', text)
