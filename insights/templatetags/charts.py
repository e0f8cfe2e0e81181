"""{% chart figure %}: a plotly figure spec rendered by insights/static/insights/charts.js."""
from __future__ import annotations

import itertools

from django import template
from django.utils.html import format_html, json_script

register = template.Library()
# plotly.js's basic bundle (scatter, bar, pie), vendored by scripts/vendor_plotly.sh; the version in the name
# lets browsers cache it for good (WHITENOISE_IMMUTABLE_FILE_TEST).
PLOTLY_JS = "vendor/plotly-basic-4.1.1.min.js"
_ids = itertools.count(1)


@register.simple_tag
def chart(figure: dict, css_class: str = "chart"):
    """A container the script fills in, and the figure as JSON (no inline script to run)."""
    element_id = f"chart-{figure.get('id', 'figure')}-{next(_ids)}"
    return format_html('<div class="{}" id="{}" data-figure="{}-data" data-chart="{}"></div>{}', css_class,
                       element_id, element_id, figure.get("id", ""),
                       json_script({"data": figure["data"], "layout": figure["layout"]}, f"{element_id}-data"))


@register.inclusion_tag("insights/chart_assets.html")
def chart_assets():
    """The plotly.js bundle and the renderer; include once per page."""
    return {"plotly_js": PLOTLY_JS}
