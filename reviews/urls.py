from django.urls import path

from reviews.views import manage, review

app_name = "reviews"

urlpatterns = [
    # Review access: the reviewer's inbox, and the reviews an administrator manages
    path("", manage.index, name="index"),
    path("new/", manage.review_create, name="review_create"),
    path("new/scopes/", manage.scope_search, name="scope_search"),
    path("<int:pk>/", manage.review_detail, name="review_detail"),
    path("<int:pk>/edit/", manage.review_edit, name="review_edit"),
    path("<int:pk>/stop/", manage.review_stop, name="review_stop"),
    # One occurrence: reviewing its items, its results, applying them
    path("instances/<int:pk>/", review.instance_detail, name="instance_detail"),
    path("instances/<int:pk>/decide/", review.decide, name="decide"),
    path(
        "instances/<int:pk>/accept-recommendations/",
        review.accept_recommendations,
        name="accept_recommendations",
    ),
    path("instances/<int:pk>/results/", review.results, name="results"),
    path("instances/<int:pk>/results.csv", review.results_export, name="results_export"),
    path("instances/<int:pk>/apply/", review.apply, name="apply"),
]
