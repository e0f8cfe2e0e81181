"""Thin views: a household lists and dismisses its notifications."""
from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from . import selectors, services
from .models import Notification
from .serializers import NotificationSerializer


class NotificationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = NotificationSerializer
    filterset_fields = ["kind", "home"]

    queryset = Notification.objects.none()  # for the schema generator; requests use get_queryset

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Notification.objects.none()
        qs = selectors.notifications_for_user(self.request.user)
        if self.request.query_params.get("dismissed") in ("false", "0"):
            qs = qs.filter(dismissed_at__isnull=True)
        return qs

    @action(detail=True, methods=["post"])
    def dismiss(self, request, pk=None):
        return Response(NotificationSerializer(services.dismiss_notification(self.get_object())).data)

    @extend_schema(request=None, responses={200: inline_serializer(
        "DismissedCount", {"dismissed": serializers.IntegerField(help_text="Notifications dismissed now.")})})
    @action(detail=False, methods=["post"], url_path="dismiss-all")
    def dismiss_all(self, request):
        return Response({"dismissed": services.dismiss_all_notifications(request.user)})
