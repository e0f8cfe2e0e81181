"""Pure parsers for price and CO2 documents from outside sources (no Django, no network).

Each parser takes the document's text and returns `ParsedSeries` in the project's units
(EUR/kWh, g/kWh), or raises `DocumentError` naming the line or element at fault. Storing
is a separate step (devices.signal_ingest), so a bad document writes nothing.
"""
from .base import DocumentError, ParsedSeries
from .electricitymaps import parse_electricitymaps_history
from .entsoe import parse_entsoe_day_ahead
from .omie import parse_omie_marginal_prices
from .plain_csv import parse_signal_csv

PARSERS = {
    "entsoe": parse_entsoe_day_ahead,
    "omie": parse_omie_marginal_prices,
    "csv": parse_signal_csv,
    "electricitymaps": parse_electricitymaps_history,
}


def detect_format(name: str, text: str) -> str:
    """Guess a document's format from its file name and first characters."""
    head = text.lstrip()[:200]
    lower = name.lower()
    if head.startswith("<") or lower.endswith(".xml"):
        return "entsoe"
    if head.upper().startswith("MARGINALPDBC") or lower.startswith("marginalpdbc"):
        return "omie"
    if head.startswith("{") or lower.endswith(".json"):
        return "electricitymaps"
    return "csv"


__all__ = ["DocumentError", "ParsedSeries", "PARSERS", "detect_format", "parse_electricitymaps_history",
           "parse_entsoe_day_ahead", "parse_omie_marginal_prices", "parse_signal_csv"]
