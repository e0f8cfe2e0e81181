from django.urls import path

from . import views

app_name = "webapp"
urlpatterns = [
    path("", views.home_page, name="home"),
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", views.LogoutView.as_view(), name="logout"),
    path("recommendations/<int:pk>/accept/", views.decide, {"decision": "accept"}, name="accept"),
    path("recommendations/<int:pk>/decline/", views.decide, {"decision": "decline"}, name="decline"),
]
