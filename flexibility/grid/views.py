"""Operator / aggregator API: portfolios, offers, activations and their delivery."""
from __future__ import annotations

from django.shortcuts import get_object_or_404
from rest_framework import generics, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.response import Response
from rest_framework.views import APIView
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from energy_manager.authentication import JWTAuthentication

from devices.models import Home
from energy_manager.errors import NotFound

from . import selectors as sel
from . import services
from .serializers import (
    ActivationDetailSerializer, ActivationRequestSerializer, ActivationSerializer, OfferQuerySerializer,
    OfferSerializer, PortfolioSerializer,
)
from .models import FlexibilityOffer
from .service_auth import IsOperator, ServiceAccountAuthentication


class OperatorView:
    """Service accounts (API key) or staff; household tokens authenticate but are refused (403)."""

    authentication_classes = [ServiceAccountAuthentication, JWTAuthentication, SessionAuthentication]
    permission_classes = [IsOperator]


class PortfolioListView(OperatorView, generics.ListAPIView):
    serializer_class = PortfolioSerializer

    def get_queryset(self):
        return sel.portfolios_for(self.request.user).prefetch_related("homes")


class PortfolioOfferView(OperatorView, APIView):
    """The portfolio's aggregated offer: summed limits and a merit-order price curve per slot."""

    @extend_schema(parameters=[OpenApiParameter("delivery_day", OpenApiTypes.DATE, required=True)],
                   responses={200: OpenApiTypes.OBJECT},
                   description="Summed limits and a merit-order price curve per slot (kW, EUR/kW).")
    def get(self, request, pk: int):
        portfolio = get_object_or_404(sel.portfolios_for(request.user), pk=pk)
        query = OfferQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        day = query.validated_data["delivery_day"]
        offers = list(sel.offers_for(request.user, day, portfolio))
        body = sel.portfolio_offer(portfolio, day, offers)
        if body is None:
            raise NotFound(f"No offers for portfolio {portfolio.code} on {day}.")
        return Response(body)


@extend_schema(parameters=[OfferQuerySerializer])
class OfferListView(OperatorView, generics.ListAPIView):
    serializer_class = OfferSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return FlexibilityOffer.objects.none()
        query = OfferQuerySerializer(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        portfolio = None
        if "portfolio" in query.validated_data:
            portfolio = get_object_or_404(sel.portfolios_for(self.request.user), pk=query.validated_data["portfolio"])
        return sel.offers_for(self.request.user, query.validated_data["delivery_day"], portfolio)


class ActivationListView(OperatorView, generics.ListCreateAPIView):
    serializer_class = ActivationSerializer

    def get_queryset(self):
        return sel.activations_for(self.request.user)

    @extend_schema(request=ActivationRequestSerializer, responses={
        201: ActivationDetailSerializer,
        422: OpenApiResponse(description="Beyond what the offers allow; `error.available` gives the room per slot.")})
    def create(self, request, *args, **kwargs):
        data = ActivationRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        home = portfolio = None
        if "home" in v:
            home = get_object_or_404(sel.homes_for(request.user), pk=v["home"])
        else:
            portfolio = get_object_or_404(sel.portfolios_for(request.user), pk=v["portfolio"])
        activation = services.create_activation(
            request.user, start=v["start"], requested_min_kw=v["requested_min_kw"],
            requested_max_kw=v["requested_max_kw"], mode=v["mode"], home=home, portfolio=portfolio,
            external_id=v["external_id"],
        )
        return Response(ActivationDetailSerializer(activation).data, status=status.HTTP_201_CREATED)


class ActivationDetailView(OperatorView, generics.RetrieveAPIView):
    serializer_class = ActivationDetailSerializer

    def get_queryset(self):
        return sel.activations_for(self.request.user).prefetch_related("shares")


class ActivationDeliveryView(OperatorView, APIView):
    """Requested vs planned vs measured net import per slot."""

    @extend_schema(responses={200: OpenApiTypes.OBJECT}, description="Requested vs planned vs measured net import per slot (kW).")
    def get(self, request, pk: int):
        activation = get_object_or_404(sel.activations_for(request.user), pk=pk)
        return Response({"activation": activation.pk, "status": activation.status, **sel.delivery(activation)})
