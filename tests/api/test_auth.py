"""Registration and the JWT flow: obtain, use, refresh (rotation), logout (blacklist)."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def test_register_login_refresh_logout(anon_client, django_user_model):
    r = anon_client.post("/api/v1/auth/register/", {"email": "New@Example.com", "password": "a-long-enough-pass-77"},
                         format="json")
    assert r.status_code == 202, r.json()
    assert r.json()["email"] == "new@example.com" and "password" not in r.json()
    user = django_user_model.objects.get(email="new@example.com")
    assert user.check_password("a-long-enough-pass-77") and not user.is_staff

    tokens = anon_client.post("/api/v1/auth/token/", {"email": "new@example.com", "password": "a-long-enough-pass-77"},
                              format="json").json()
    anon_client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
    assert anon_client.get("/api/v1/auth/me/").json()["email"] == "new@example.com"

    refreshed = anon_client.post("/api/v1/auth/token/refresh/", {"refresh": tokens["refresh"]}, format="json")
    assert refreshed.status_code == 200 and refreshed.json()["refresh"] != tokens["refresh"]
    # rotation blacklists the used refresh token
    reused = anon_client.post("/api/v1/auth/token/refresh/", {"refresh": tokens["refresh"]}, format="json")
    assert reused.status_code == 401

    new_refresh = refreshed.json()["refresh"]
    assert anon_client.post("/api/v1/auth/logout/", {"refresh": new_refresh}, format="json").status_code == 204
    after = anon_client.post("/api/v1/auth/token/refresh/", {"refresh": new_refresh}, format="json")
    assert after.status_code == 401
    assert set(after.json()["error"]) == {"code", "message", "fields"}


def test_wrong_password_is_401(anon_client, user):
    r = anon_client.post("/api/v1/auth/token/", {"email": user.email, "password": "nope"}, format="json")
    assert r.status_code == 401 and r.json()["error"]["code"] == "authentication_failed"
    r = anon_client.post("/api/v1/auth/token/", {"email": "ghost@example.com", "password": "nope"}, format="json")
    assert r.status_code == 401


@pytest.mark.parametrize("payload, bad", [
    ({"email": "not-an-email", "password": "a-long-enough-pass-77"}, "email"),
    ({"email": "x@example.com", "password": "123"}, "password"),
    ({"email": "x@example.com", "password": "a-long-enough-pass-77", "is_staff": True}, "is_staff"),
])
def test_register_bad_input(anon_client, user, django_user_model, payload, bad):
    before = django_user_model.objects.count()
    r = anon_client.post("/api/v1/auth/register/", payload, format="json")
    assert r.status_code == 400 and bad in r.json()["error"]["fields"]
    assert django_user_model.objects.count() == before


def test_logout_requires_own_valid_token(api_client, other_user):
    from rest_framework_simplejwt.tokens import RefreshToken

    foreign = str(RefreshToken.for_user(other_user))
    r = api_client.post("/api/v1/auth/logout/", {"refresh": foreign}, format="json")
    assert r.status_code == 400 and "refresh" in r.json()["error"]["fields"]
    assert api_client.post("/api/v1/auth/logout/", {"refresh": "garbage"}, format="json").status_code == 400


def test_registration_does_not_reveal_which_emails_have_accounts(anon_client, user, django_user_model, mailoutbox):
    """A taken address answers exactly like a free one; its owner is told by e-mail instead."""
    taken = anon_client.post("/api/v1/auth/register/", {"email": "ALICE@example.com",
                                                         "password": "a-long-enough-pass-77"})
    free = anon_client.post("/api/v1/auth/register/", {"email": "carol@example.com",
                                                        "password": "a-long-enough-pass-77"})
    assert (taken.status_code, set(taken.json())) == (free.status_code, set(free.json())) == (202, {"email", "message"})
    assert taken.json()["message"] == free.json()["message"]
    assert django_user_model.objects.filter(email__iexact="alice@example.com").count() == 1
    assert not django_user_model.objects.get(email="alice@example.com").check_password("a-long-enough-pass-77")
    assert [m.to for m in mailoutbox] == [["alice@example.com"]]
