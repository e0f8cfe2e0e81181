"""Statistics API: household scope (own homes) and operator scope (portfolios)."""
from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from flexibility.grid import selectors as grid_selectors
from flexibility.grid.views import OperatorView
from flexibility.planning.selectors import home_for_user

from . import selectors
from .serializers import SeriesQuerySerializer, StatisticsQuerySerializer


def _query(serializer_class, request) -> dict:
    """The validated query parameters (a 400 naming the field otherwise)."""
    query = serializer_class(data=request.query_params)
    query.is_valid(raise_exception=True)
    return query.validated_data


class HomeStatisticsView(APIView):
    """Energy imported/exported, PV, cost, CO2, self-consumption, self-sufficiency and savings per local
    day or month; `devices=true` adds each device's consumption, production, cost and CO2."""

    @extend_schema(parameters=[StatisticsQuerySerializer], responses={200: OpenApiTypes.OBJECT})
    def get(self, request, home_id: int):
        home = home_for_user(request.user, home_id)
        q = _query(StatisticsQuerySerializer, request)
        return Response(selectors.home_statistics(home, q["bucket"], q.get("first_day"), q.get("last_day"),
                                                  with_devices=q["devices"]))


class HomeSeriesView(APIView):
    """One local day per 15-minute slot: consumption, injection, PV, CO2 signal, prices, and forecast
    against measured (base load, the plan's net import)."""

    @extend_schema(parameters=[SeriesQuerySerializer], responses={200: OpenApiTypes.OBJECT})
    def get(self, request, home_id: int):
        home = home_for_user(request.user, home_id)
        return Response(selectors.home_series(home, _query(SeriesQuerySerializer, request).get("day")))


class PortfolioStatisticsView(OperatorView, APIView):
    """The statistics of a portfolio's homes together (service accounts of the portfolio, staff)."""

    @extend_schema(parameters=[StatisticsQuerySerializer], responses={200: OpenApiTypes.OBJECT})
    def get(self, request, pk: int):
        portfolio = get_object_or_404(grid_selectors.portfolios_for(request.user), pk=pk)
        q = _query(StatisticsQuerySerializer, request)
        return Response(selectors.portfolio_statistics(portfolio, q["bucket"], q.get("first_day"), q.get("last_day")))
