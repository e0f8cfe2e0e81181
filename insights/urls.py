"""Statistics routes under /api/v1/."""
from django.urls import path

from . import views

urlpatterns = [
    path("homes/<int:home_id>/statistics/", views.HomeStatisticsView.as_view(), name="home-statistics"),
    path("homes/<int:home_id>/statistics/series/", views.HomeSeriesView.as_view(), name="home-statistics-series"),
    path("operator/portfolios/<int:pk>/statistics/", views.PortfolioStatisticsView.as_view(),
         name="operator-portfolio-statistics"),
]
