"""Thin views: parse, call a service or selector, serialize."""
from __future__ import annotations

from datetime import timedelta

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response
from rest_framework.generics import GenericAPIView

from energy_manager.throttles import SolveThrottle

from . import selectors, services
from .models import OptimizationRun, Schedule
from .serializers import RecommendationSerializer, RunRequestSerializer, RunSerializer, ScheduleSerializer
from .slots import floor_to_slot
from energy_manager import clock


HOME_ID = OpenApiParameter("home_id", OpenApiTypes.INT, OpenApiParameter.PATH, description="The home's id.")


@extend_schema(parameters=[HOME_ID])
class HomeOptimizationsView(GenericAPIView):
    """POST: plan a home (202 with the run and its status URL). GET: the home's runs, newest first."""

    serializer_class = RunSerializer
    queryset = OptimizationRun.objects.none()  # for the schema generator; requests use selectors
    throttle_classes = [SolveThrottle]

    @extend_schema(summary="The home's optimization runs, newest first", responses={200: RunSerializer(many=True)})
    def get(self, request, home_id: int):
        home = selectors.home_for_user(request.user, home_id)
        page = self.paginate_queryset(selectors.runs_for_user(request.user).filter(home=home))
        return self.get_paginated_response(RunSerializer(page, many=True, context={"request": request}).data)

    @extend_schema(
        summary="Plan the home: 202 with the queued run, or 200 with the recent run of identical input",
        request=RunRequestSerializer,
        responses={202: RunSerializer, 200: RunSerializer,
                   422: OpenApiResponse(description="Data the plan needs is missing; `error.fields` names it."),
                   503: OpenApiResponse(description="The task broker is unreachable; the run stays queued and the "
                                                    "reaper sends it again.")},
    )
    def post(self, request, home_id: int):
        home = selectors.home_for_user(request.user, home_id)
        body = RunRequestSerializer(data=request.data or {})
        body.is_valid(raise_exception=True)
        data = body.validated_data
        start, end = data.get("horizon_start"), data.get("horizon_end")
        if "horizon_hours" in data:
            end = (start or floor_to_slot(clock.now())) + timedelta(hours=data["horizon_hours"])
        try:
            run, created = services.submit_run(
                home, horizon_start=start, horizon_end=end, objective=data.get("objective"),
                backend=data.get("backend"), time_limit_s=data.get("time_limit_s"), force=data["force"],
                requested_by=request.user,
            )
        except ValueError as exc:
            raise ValidationError({"horizon_end": [str(exc)]})
        # an identical recent run answers with its schedule when it has one, as GET /optimizations/{id} does
        payload = RunSerializer(run, context={"request": request, "with_schedule": not created}).data
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


@extend_schema(parameters=[HOME_ID])
class HomeSchedulesView(GenericAPIView):
    """GET /homes/{id}/schedules: the home's schedules, newest first."""

    serializer_class = ScheduleSerializer
    queryset = Schedule.objects.none()  # for the schema generator; requests use selectors

    @extend_schema(summary="The home's schedules, newest first", responses={200: ScheduleSerializer(many=True)})
    def get(self, request, home_id: int):
        home = selectors.home_for_user(request.user, home_id)
        page = self.paginate_queryset(selectors.schedules_for_home(home))
        return self.get_paginated_response(ScheduleSerializer(page, many=True).data)


@extend_schema(parameters=[HOME_ID])
class HomeLatestScheduleView(GenericAPIView):
    """GET /homes/{id}/schedules/latest: the current plan."""

    serializer_class = ScheduleSerializer

    @extend_schema(summary="The home's current plan", responses={200: ScheduleSerializer})
    def get(self, request, home_id: int):
        schedule = selectors.latest_schedule(selectors.home_for_user(request.user, home_id))
        if schedule is None:
            raise NotFound("This home has no schedule yet.")
        return Response(ScheduleSerializer(schedule).data)


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
