"""`manage.py mqtt_credentials`: one password + ACL pair per listener, or one pair for everything."""
from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from hub_bridge.provision import provision_simulated_hubs

pytestmark = pytest.mark.django_db


def _run(tmp_path, *services, split: bool = True) -> dict[str, str]:
    names = ["passwd", "acl"] + (["service-passwd", "service-acl"] if split else [])
    paths = {n: tmp_path / n for n in names}
    options = {"password_file": str(paths["passwd"]), "acl_file": str(paths["acl"]), "service": list(services)}
    if split:
        options.update(service_password_file=str(paths["service-passwd"]), service_acl_file=str(paths["service-acl"]))
    call_command("mqtt_credentials", prefix="p", stdout=io.StringIO(), **options)
    return {n: p.read_text() for n, p in paths.items()}


def test_hubs_and_cloud_accounts_go_to_their_own_listeners_files(tmp_path):
    spec = provision_simulated_hubs(1, tag="creds")[0]
    files = _run(tmp_path, "relay-1:s3cret:relay", "listener-1:s3cret:listener")
    assert [line.split(":")[0] for line in files["passwd"].splitlines()] == [spec.username]
    assert [line.split(":")[0] for line in files["service-passwd"].splitlines()] == ["relay-1", "listener-1"]
    assert f"user {spec.username}" in files["acl"] and "user relay-1" not in files["acl"]
    assert "user relay-1" in files["service-acl"] and spec.username not in files["service-acl"]


def test_one_pair_holds_every_account_when_the_broker_has_one_listener(tmp_path):
    spec = provision_simulated_hubs(1, tag="single")[0]
    files = _run(tmp_path, "relay-1:s3cret:relay", split=False)
    assert [line.split(":")[0] for line in files["passwd"].splitlines()] == ["relay-1", spec.username]
    assert "user relay-1" in files["acl"] and f"user {spec.username}" in files["acl"]
    assert files["acl"].count("# Generated") == 1


def test_a_cloud_account_cannot_take_a_hub_name_and_the_service_files_go_together(tmp_path):
    with pytest.raises(CommandError, match="hub-"):
        _run(tmp_path, "hub-relay:s3cret:relay")
    with pytest.raises(CommandError, match="together"):
        call_command("mqtt_credentials", password_file=str(tmp_path / "a"), acl_file=str(tmp_path / "b"),
                     service_password_file=str(tmp_path / "c"), stdout=io.StringIO())
