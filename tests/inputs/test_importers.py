"""Each importer on fixture files the project wrote in the source's format; bad documents name
the line or element at fault and write nothing."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from devices.importers import (
    DocumentError, parse_electricitymaps_history, parse_entsoe_day_ahead, parse_omie_marginal_prices, parse_signal_csv,
)
from devices.models import SignalSeries
from devices.signal_ingest import import_document, import_path
from tasks.inputs import import_signal_folder
from tests.plugins.mqtt import wait_for

FIXTURES = Path(__file__).parent / "fixtures"
UTC = timezone.utc


def read(name: str) -> str:
    return (FIXTURES / name).read_text()


# --- ENTSO-E A44 ----------------------------------------------------------------------------

def test_entsoe_quarter_hours_with_a03_gaps_and_dst_day():
    series = parse_entsoe_day_ahead(read("entsoe_a44_pt_20260328.xml"))
    expected = json.loads((FIXTURES.parent / "entsoe_a44_pt_20260328.expected.json").read_text())
    assert [(s.area, s.start, s.resolution_minutes, len(s.values)) for s in series] == [
        ("PT", datetime(2026, 3, 27, 23, tzinfo=UTC), 15, 96),  # A03: positions 5..12 left out, filled forward
        ("PT", datetime(2026, 3, 28, 23, tzinfo=UTC), 60, 23),  # the spring-forward day has 23 hours
    ]
    assert series[0].values == [round(v / 1000, 6) for v in expected["quarter_hours_eur_per_mwh"]]
    assert series[1].values == [round(v / 1000, 6) for v in expected["hours_eur_per_mwh"]]
    assert all(s.kind == "import_price" for s in series)


@pytest.mark.parametrize("old, new, where", [
    ("</price.amount>\n            </Point>\n        </Period>", "x</price.amount></Point></Period>",
     "TimeSeries[2]/Period[1]/Point[23]/price.amount (line "),
    ("<resolution>PT60M</resolution>", "<resolution>P1D</resolution>", "TimeSeries[2]/Period[1]/resolution"),
    ("<currency_Unit.name>EUR</currency_Unit.name>", "<currency_Unit.name>USD</currency_Unit.name>",
     "TimeSeries[2]/currency_Unit.name (line 392)"),
    ("<type>A44</type>", "<type>A65</type>", "Publication_MarketDocument/type"),
    ("<position>23</position>", "<position>24</position>", "TimeSeries[2]/Period[1]/Point[23]/position"),
    ("</Publication_MarketDocument>", "", "line "),
])
def test_entsoe_bad_documents_name_the_element(old, new, where):
    text = read("entsoe_a44_pt_20260328.xml")
    assert old in text
    at = text.rindex(old)  # the last occurrence: the hourly curve of the second TimeSeries
    with pytest.raises(DocumentError) as err:
        parse_entsoe_day_ahead(text[:at] + new + text[at + len(old):])
    assert where in str(err.value)


def test_entsoe_acknowledgement_names_the_reason():
    ack = ('<?xml version="1.0"?><Acknowledgement_MarketDocument xmlns="urn:iec62325.351:tc57wg16:451-1:'
           'acknowledgementdocument:7:0"><mRID>x</mRID><Reason><code>999</code><text>No matching data found'
           '</text></Reason></Acknowledgement_MarketDocument>')
    with pytest.raises(DocumentError, match="No matching data found"):
        parse_entsoe_day_ahead(ack)


# --- OMIE -----------------------------------------------------------------------------------

def test_omie_quarter_hours_for_portugal_and_spain_on_a_dst_day():
    series = parse_omie_marginal_prices(read("marginalpdbc_20260329.1"))
    assert [(s.area, s.start, s.resolution_minutes, len(s.values)) for s in series] == [
        ("PT", datetime(2026, 3, 28, 23, tzinfo=UTC), 15, 92),  # 00:00 Madrid (CET) on a 23-hour day
        ("ES", datetime(2026, 3, 28, 23, tzinfo=UTC), 15, 92),
    ]
    lines = read("marginalpdbc_20260329.1").splitlines()
    cells = lines[7].split(";")  # period 7: Spain differs from Portugal in the fixture
    assert series[0].values[6] == round(float(cells[4]) / 1000, 6)
    assert series[1].values[6] == round(float(cells[5]) / 1000, 6)
    assert series[0].values[6] != series[1].values[6]


def test_omie_hourly_file_before_the_quarter_hour_market():
    text = "MARGINALPDBC;\n" + "".join(f"2025;06;01;{p};{40 + p}.5;{41 + p},25;\n" for p in range(1, 25)) + "*\n"
    pt, es = parse_omie_marginal_prices(text)
    assert (pt.start, pt.resolution_minutes, len(pt.values)) == (datetime(2025, 5, 31, 22, tzinfo=UTC), 60, 24)
    assert es.values[0] == 0.04225  # decimal comma read too


@pytest.mark.parametrize("mutate, where", [
    (lambda ls: ls[:5] + ["2026;03;29;5;abc;70.00;"] + ls[6:], "line 6, field price PT"),
    (lambda ls: ls[:10] + ls[11:], "day 2026-03-29"),  # 91 periods on a 92-period day
    (lambda ls: ["PRECIOS;"] + ls[1:], "line 1"),
    (lambda ls: ls[:3] + ["2026;03;29;2;1.0;1.0"] + ls[4:], "line 4, field period"),
])
def test_omie_bad_files_name_the_line(mutate, where):
    lines = read("marginalpdbc_20260329.1").splitlines()
    with pytest.raises(DocumentError) as err:
        parse_omie_marginal_prices("\n".join(mutate(lines)))
    assert str(err.value).startswith(where)


# --- CSV and Electricity Maps ---------------------------------------------------------------

def test_csv_rows_by_kind_and_area_in_project_units():
    series = {(s.kind, s.area): s for s in parse_signal_csv(read("prices.csv"))}
    es, pt = series[("import_price", "ES")], series[("export_price", "PT")]
    assert (es.start, es.resolution_minutes, len(es.values)) == (datetime(2026, 3, 29, 22, tzinfo=UTC), 60, 24)
    assert es.values[0] == 0.08406  # 84.06 EUR/MWh
    assert pt.values[:2] == [0.04, 0.041]  # already EUR/kWh


@pytest.mark.parametrize("line, bad, where", [
    (3, "2026-03-30T01:00:00,ES,import_price,75.00,EUR/MWh", "line 3, column start"),
    (4, "2026-03-30T02:00:00+02:00,ES,import_price,cheap,EUR/MWh", "line 4, column value"),
    (5, "2026-03-30T03:00:00+02:00,ES,import_price,1,g/kWh", "line 5, column unit"),
    (6, "2026-03-30T04:07:00+02:00,ES,import_price,1,EUR/MWh", "line 6, column start"),
])
def test_csv_bad_rows_name_line_and_column(line, bad, where):
    lines = read("prices.csv").splitlines()
    lines[line - 1] = bad
    with pytest.raises(DocumentError) as err:
        parse_signal_csv("\n".join(lines))
    assert str(err.value).startswith(where)


def test_electricitymaps_history_splits_at_a_missing_hour():
    first, second = parse_electricitymaps_history(read("electricitymaps_history_pt.json"))
    doc = json.loads(read("electricitymaps_history_pt.json"))
    assert (first.kind, first.area, first.resolution_minutes, len(first.values)) == ("co2_intensity", "PT", 60, 10)
    assert second.start == first.start + timedelta(hours=11) and len(second.values) == 13
    assert first.values == [float(h["carbonIntensity"]) for h in doc["history"][:10]]


def test_electricitymaps_bad_entry_is_named():
    doc = json.loads(read("electricitymaps_history_pt.json"))
    doc["history"][4]["carbonIntensity"] = "high"
    with pytest.raises(DocumentError, match=r"^history\[4\]\.carbonIntensity"):
        parse_electricitymaps_history(json.dumps(doc))
    doc["history"][4]["carbonIntensity"] = 100
    doc["history"][7]["datetime"] = "2026-03-30 07:00"
    with pytest.raises(DocumentError, match=r"^history\[7\]\.datetime"):
        parse_electricitymaps_history(json.dumps(doc))


# --- storing: idempotent, all or nothing ----------------------------------------------------

def test_import_is_idempotent_and_replaces_overlaps(db):
    first = import_document(read("marginalpdbc_20260329.1"), name="marginalpdbc_20260329.1")
    again = import_document(read("marginalpdbc_20260329.1"), name="marginalpdbc_20260329.1")
    assert (first.created, first.replaced) == (2, 0)
    assert (again.created, again.replaced) == (2, 2)
    assert SignalSeries.objects.filter(kind="import_price").count() == 2
    # ENTSO-E's hourly PT curve for the same day replaces OMIE's PT series only (same scope), not Spain's.
    import_document(read("entsoe_a44_pt_20260328.xml"), name="a44.xml")
    pt = SignalSeries.objects.filter(area="PT").order_by("start")
    assert [(s.resolution_minutes, len(s.values)) for s in pt] == [(15, 96), (60, 23)]
    assert SignalSeries.objects.filter(area="ES").count() == 1


def test_folder_import_files_each_document_and_a_bad_one_writes_nothing(db, tmp_path):
    for name in ("marginalpdbc_20260330.1", "prices.csv", "electricitymaps_history_pt.json"):
        (tmp_path / name).write_text(read(name))
    bad = read("marginalpdbc_20260329.1").replace("2026;03;29;50;", "2026;03;29;x;")
    (tmp_path / "marginalpdbc_20260329.1").write_text(bad)
    outcomes = {o.path.name: o for o in import_path(tmp_path, move=True)}
    assert outcomes["marginalpdbc_20260329.1"].error.startswith("marginalpdbc_20260329.1: line 51, field period")
    assert all(o.error is None for n, o in outcomes.items() if n != "marginalpdbc_20260329.1")
    assert not SignalSeries.objects.filter(start=datetime(2026, 3, 28, 23, tzinfo=UTC)).exists()
    assert SignalSeries.objects.filter(kind="co2_intensity", area="PT").count() == 2
    assert sorted(p.name for p in (tmp_path / "imported").iterdir()) == [
        "electricitymaps_history_pt.json", "marginalpdbc_20260330.1", "prices.csv"]
    assert (tmp_path / "rejected" / "marginalpdbc_20260329.1.error").read_text().startswith("marginalpdbc_20260329.1:")


def test_command_exits_2_with_one_line(db, tmp_path):
    path = tmp_path / "prices.csv"
    path.write_text(read("prices.csv").replace("84.06", "8x"))
    with pytest.raises(CommandError) as err:
        call_command("import_signals", str(path))
    assert err.value.returncode == 2 and "\n" not in str(err.value)
    assert "line 2, column value" in str(err.value)
    assert not SignalSeries.objects.exists()
    call_command("import_signals", str(FIXTURES / "prices.csv"))
    assert SignalSeries.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_periodic_import_reads_the_configured_folder_in_a_worker(tmp_path, celery_worker):
    for name in ("marginalpdbc_20260330.1", "electricitymaps_history_pt.json"):
        (tmp_path / name).write_text(read(name))
    (tmp_path / "broken.csv").write_text("start,value\n2026-03-30T00:00:00+00:00,1\n")  # no area
    worker = celery_worker(queues=["default"], env={"SIGNAL_IMPORT_DIR": str(tmp_path)})

    import_signal_folder.delay()
    wait_for(lambda: (tmp_path / "rejected" / "broken.csv.error").exists(), timeout=60,
             message=f"the worker to file the broken document\n{worker.log()}")
    wait_for(lambda: (tmp_path / "imported").exists() and len(list((tmp_path / "imported").iterdir())) == 2,
             timeout=60, message="both good documents imported")
    assert (tmp_path / "rejected" / "broken.csv.error").read_text().startswith("broken.csv: line 1"), worker.log()
    assert sorted(p.name for p in (tmp_path / "imported").iterdir()) == [
        "electricitymaps_history_pt.json", "marginalpdbc_20260330.1"]
    assert SignalSeries.objects.filter(kind="import_price", area__in=["PT", "ES"]).count() == 2
