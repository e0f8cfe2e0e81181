"""FlexiHome-compatible routes, under /api/energy_manager_service/."""
from django.urls import path

from . import views

urlpatterns = [
    path("flexibility/available", views.AvailableView.as_view(), name="compat-available"),
    path("flexibility/accept", views.AcceptView.as_view(), name="compat-accept"),
    path("flexibility/recommendations", views.RecommendationsView.as_view(), name="compat-recommendations"),
    path("flexibility/recommendations/accept", views.RecommendationAcceptView.as_view(),
         name="compat-recommendations-accept"),
]
