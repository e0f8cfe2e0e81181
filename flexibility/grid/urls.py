"""Operator / aggregator API, under /api/v1/operator/."""
from django.urls import path

from . import views as v

urlpatterns = [
    path("operator/portfolios/", v.PortfolioListView.as_view(), name="operator-portfolios"),
    path("operator/portfolios/<int:pk>/offer/", v.PortfolioOfferView.as_view(), name="operator-portfolio-offer"),
    path("operator/offers/", v.OfferListView.as_view(), name="operator-offers"),
    path("operator/activations/", v.ActivationListView.as_view(), name="operator-activations"),
    path("operator/activations/<int:pk>/", v.ActivationDetailView.as_view(), name="operator-activation"),
    path("operator/activations/<int:pk>/delivery/", v.ActivationDeliveryView.as_view(), name="operator-activation-delivery"),
]
