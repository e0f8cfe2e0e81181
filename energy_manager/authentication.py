"""JWT authentication whose errors say why at the top of the error body: `token_expired` or `token_not_valid`."""
from __future__ import annotations

from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme
from rest_framework_simplejwt import authentication
from rest_framework_simplejwt.exceptions import ExpiredTokenError, InvalidToken, TokenError
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.tokens import Token


def invalid_token(error: TokenError) -> InvalidToken:
    """The 401 for a token that failed: expired ones get their own code, so clients know to refresh."""
    if isinstance(error, ExpiredTokenError):
        return InvalidToken(str(error.args[0]), code="token_expired")
    return InvalidToken(str(error.args[0]), code="token_not_valid")


class JWTAuthentication(authentication.JWTAuthentication):
    def get_validated_token(self, raw_token: bytes) -> Token:
        first_error: TokenError | None = None
        for token_class in api_settings.AUTH_TOKEN_CLASSES:
            try:
                return token_class(raw_token)
            except TokenError as error:
                first_error = first_error or error
        raise invalid_token(first_error or TokenError("Token is invalid"))


class JWTScheme(SimpleJWTScheme):
    """drf-spectacular: document this class as the bearer JWT scheme it is."""

    target_class = "energy_manager.authentication.JWTAuthentication"
