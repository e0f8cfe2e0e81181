"""Thin views: parse, call a service or selector, serialize."""
from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response
from rest_framework.generics import GenericAPIView

from . import selectors, services
from .serializers import RecommendationSerializer, RunRequestSerializer, RunSerializer, ScheduleSerializer
from .slots import floor_to_slot


class HomeOptimizationsView(GenericAPIView):
    """POST: plan a home (202 with the run and its status URL). GET: the home's runs, newest first."""

    serializer_class = RunSerializer

    def get(self, request, home_id: int):
        home = selectors.home_for_user(request.user, home_id)
        page = self.paginate_queryset(selectors.runs_for_user(request.user).filter(home=home))
        return self.get_paginated_response(RunSerializer(page, many=True, context={"request": request}).data)

    def post(self, request, home_id: int):
        home = selectors.home_for_user(request.user, home_id)
        body = RunRequestSerializer(data=request.data or {})
        body.is_valid(raise_exception=True)
        data = body.validated_data
        start, end = data.get("horizon_start"), data.get("horizon_end")
        if "horizon_hours" in data:
            end = (start or floor_to_slot(timezone.now())) + timedelta(hours=data["horizon_hours"])
        try:
            run, created = services.submit_run(
                home, horizon_start=start, horizon_end=end, objective=data.get("objective"),
                backend=data.get("backend"), time_limit_s=data.get("time_limit_s"), force=data["force"],
                requested_by=request.user,
            )
        except ValueError as exc:
            raise ValidationError({"horizon_end": [str(exc)]})
        payload = RunSerializer(run, context={"request": request}).data
        payload["created"] = created
        return Response(payload, status=status.HTTP_202_ACCEPTED if created else status.HTTP_200_OK)


class RunViewSet(viewsets.ReadOnlyModelViewSet):
    """A run's status, timings, solver statistics, explanation or error, and its schedule when done."""

    serializer_class = RunSerializer
    filterset_fields = ["status", "home", "trigger"]

    def get_queryset(self):
        return selectors.runs_for_user(self.request.user)

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "with_schedule": self.action == "retrieve"}


class HomeSchedulesView(GenericAPIView):
    """GET /homes/{id}/schedules: history; /homes/{id}/schedules/latest: the current plan."""

    latest = False
    serializer_class = ScheduleSerializer

    def get(self, request, home_id: int):
        home = selectors.home_for_user(request.user, home_id)
        if self.latest:
            schedule = selectors.latest_schedule(home)
            if schedule is None:
                raise NotFound("This home has no schedule yet.")
            return Response(ScheduleSerializer(schedule).data)
        page = self.paginate_queryset(selectors.schedules_for_home(home))
        return self.get_paginated_response(ScheduleSerializer(page, many=True).data)


class RecommendationViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = RecommendationSerializer
    filterset_fields = ["status", "home", "device"]

    def get_queryset(self):
        return selectors.recommendations_for_user(self.request.user)

    @action(detail=True, methods=["post"])
    def accept(self, request, pk=None):
        """Accept: the cycle moves to the recommended start and its hub gets the command."""
        return Response(RecommendationSerializer(services.accept_recommendation(self.get_object())).data)

    @action(detail=True, methods=["post"])
    def decline(self, request, pk=None):
        return Response(RecommendationSerializer(services.decline_recommendation(self.get_object())).data)
