"""/api/v1/auth/: registration and JWT (obtain by e-mail, refresh, logout = blacklist the refresh token)."""
from __future__ import annotations

from django.contrib.auth import authenticate, get_user_model
from django.urls import path
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import permissions, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.serializers import TokenRefreshSerializer
from rest_framework_simplejwt.tokens import RefreshToken
from rest_framework_simplejwt.views import TokenRefreshView

from devices import services
from energy_manager.api_input import StrictSerializerMixin
from energy_manager.authentication import invalid_token
from energy_manager.throttles import RegistrationThrottle, TokenThrottle


class RegisterSerializer(StrictSerializerMixin, serializers.Serializer):
    email = serializers.EmailField()
    password = serializers.CharField(write_only=True, style={"input_type": "password"})
    first_name = serializers.CharField(required=False, allow_blank=True, max_length=150)
    last_name = serializers.CharField(required=False, allow_blank=True, max_length=150)


class UserSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    email = serializers.EmailField(read_only=True)
    first_name = serializers.CharField(read_only=True)
    last_name = serializers.CharField(read_only=True)
    is_staff = serializers.BooleanField(read_only=True)


class RegistrationReceivedSerializer(serializers.Serializer):
    email = serializers.EmailField(read_only=True)
    message = serializers.CharField(read_only=True)


class TokenPairSerializer(serializers.Serializer):
    access = serializers.CharField(read_only=True)
    refresh = serializers.CharField(read_only=True)


class LoginSerializer(StrictSerializerMixin, serializers.Serializer):
    email = serializers.EmailField()
    password = serializers.CharField(write_only=True, style={"input_type": "password"})


class LogoutSerializer(StrictSerializerMixin, serializers.Serializer):
    refresh = serializers.CharField()


def _token_pair(user) -> dict[str, str]:
    refresh = RefreshToken.for_user(user)
    return {"access": str(refresh.access_token), "refresh": str(refresh)}


REGISTRATION_RECEIVED = ("If this address had no account, it has one now: log in at /api/v1/auth/token/ with "
                         "this password. If it had one, its owner has been told by e-mail.")


class RegisterView(APIView):
    """The answer is the same whether or not the e-mail already had an account (no account enumeration)."""

    permission_classes = [permissions.AllowAny]
    authentication_classes: list = []
    throttle_classes = [RegistrationThrottle]

    @extend_schema(summary="Create a household account", request=RegisterSerializer,
                   responses={202: RegistrationReceivedSerializer})
    def post(self, request):
        serializer = RegisterSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.user_register(**serializer.validated_data)
        body = {"email": serializer.validated_data["email"].strip().lower(), "message": REGISTRATION_RECEIVED}
        return Response(body, status=status.HTTP_202_ACCEPTED)


class TokenObtainView(APIView):
    """Log in with e-mail and password; answers an access and a refresh token."""

    permission_classes = [permissions.AllowAny]
    authentication_classes: list = []
    throttle_classes = [TokenThrottle]

    @extend_schema(summary="Obtain a JWT pair", request=LoginSerializer,
                   responses={200: TokenPairSerializer, 401: OpenApiResponse(description="Wrong e-mail or password.")})
    def post(self, request):
        serializer = LoginSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        email = serializer.validated_data["email"]
        account = get_user_model().objects.filter(email__iexact=email).order_by("id").first()
        user = authenticate(request, username=account.get_username() if account else email,
                            password=serializer.validated_data["password"])
        if user is None:
            return Response(
                {"error": {"code": "authentication_failed", "message": "Wrong e-mail or password.", "fields": {}}},
                status=status.HTTP_401_UNAUTHORIZED,
            )
        return Response(_token_pair(user))


class RefreshSerializer(StrictSerializerMixin, TokenRefreshSerializer):
    pass


class RefreshView(TokenRefreshView):
    serializer_class = RefreshSerializer
    throttle_classes = [TokenThrottle]

    @extend_schema(summary="Exchange a refresh token for a new pair (the old refresh token is blacklisted)",
                   responses={200: TokenPairSerializer,
                              401: OpenApiResponse(description="Refresh token invalid, blacklisted or expired.")})
    def post(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        try:
            serializer.is_valid(raise_exception=True)
        except TokenError as error:
            raise invalid_token(error) from error
        return Response(serializer.validated_data)


class LogoutView(APIView):
    @extend_schema(summary="Log out: blacklist the refresh token", request=LogoutSerializer,
                   responses={204: None})
    def post(self, request):
        serializer = LogoutSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            token = RefreshToken(serializer.validated_data["refresh"])
            if token.get("user_id") != str(request.user.pk) and token.get("user_id") != request.user.pk:
                raise TokenError("Token belongs to another user")
            token.blacklist()
        except TokenError:
            raise serializers.ValidationError({"refresh": ["Invalid or expired refresh token."]})
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeView(APIView):
    @extend_schema(summary="The logged-in user", responses={200: UserSerializer})
    def get(self, request):
        return Response(UserSerializer(request.user).data)


urlpatterns = [
    path("register/", RegisterView.as_view(), name="auth-register"),
    path("token/", TokenObtainView.as_view(), name="auth-token"),
    path("token/refresh/", RefreshView.as_view(), name="auth-token-refresh"),
    path("logout/", LogoutView.as_view(), name="auth-logout"),
    path("me/", MeView.as_view(), name="auth-me"),
]
