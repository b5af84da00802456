"""The Webhooks pages: subscriptions with their last delivery, one subscription with its
deliveries and every try of each, the form, delete, rotate secret, send test event, retry.

Viewing: whoever may view connectors (directory viewers); changing: whoever manages them
(Privileged Role and Global Administrators). Refusals go through `assignments.authz.deny`.
A secret is shown once, on the page that answers its creation or rotation (never cached).
"""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Count, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from assignments import authz
from connectors.models import DeliveryState, WebhookDelivery, WebhookSubscription
from connectors.webhooks import delivery, events, services
from connectors.webhooks.forms import SubscriptionForm
from pim_portal.params import positive_int

PAGE_SIZE = 25
SECTION = "webhooks"
STATE_FILTERS = {state.value: state.label for state in DeliveryState}


def _viewer_grants(request) -> authz.Grants:
    grants = authz.request_grants(request)
    if not grants.can_view_connectors():
        authz.deny(request.user, what="view webhooks")
    return grants


def _require_manager(request, what: str) -> authz.Grants:
    grants = _viewer_grants(request)
    if not grants.can_manage_connectors():
        authz.deny(request.user, what=what)
    return grants


def _subscription(pk) -> WebhookSubscription:
    return get_object_or_404(
        WebhookSubscription.objects.select_related("created_by"), pk=positive_int(pk) or 0
    )


def _no_store(response):
    response["Cache-Control"] = "no-store"  # a secret on the page must not stay in a cache
    return response


def _delay_words(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:g} s" if seconds else "at once"
    if seconds < 3600:
        return f"{seconds / 60:g} min"
    return f"{seconds / 3600:g} h"


# The list ----------------------------------------------------------------------------------


def _with_last_delivery(subscriptions):
    """Each subscription with its latest delivery's state, answer and time, and how many of
    its deliveries are pending and failed: one query for the page, whatever its length."""
    last = WebhookDelivery.objects.filter(subscription=OuterRef("pk")).order_by("-id")
    return subscriptions.annotate(
        last_state=Subquery(last.values("state")[:1]),
        last_type=Subquery(last.values("event_type")[:1]),
        last_at=Subquery(last.values("created_at")[:1]),
        last_status=Subquery(last.values("last_status")[:1]),
        last_error=Subquery(last.values("last_error")[:1]),
        last_attempts=Subquery(last.values("attempts")[:1]),
        pending=_count_in(DeliveryState.PENDING),
        failed=_count_in(DeliveryState.FAILED),
    )


def _count_in(state: str):
    """How many of the subscription's deliveries are in `state` (index subscription, state)."""
    counted = (
        WebhookDelivery.objects.filter(subscription=OuterRef("pk"), state=state)
        .order_by()
        .values("subscription")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(counted), Value(0))


@require_GET
def webhook_list(request):
    grants = _viewer_grants(request)
    subscriptions = _with_last_delivery(
        WebhookSubscription.objects.select_related("created_by").order_by("name", "pk")
    )
    page = Paginator(subscriptions, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "connectors/webhooks/webhook_list.html",
        {
            "section": SECTION,
            "page_obj": page,
            "subscriptions": page.object_list,
            "can_manage": grants.can_manage_connectors(),
        },
    )


# One subscription ---------------------------------------------------------------------------


def _detail(request, subscription, *, grants, secret=None, created=False, status=200):
    state = request.GET.get("state", "")
    state = state if state in STATE_FILTERS else ""
    shown = subscription.deliveries.order_by("-id").prefetch_related("tries")
    if state:
        shown = shown.filter(state=state)
    page = Paginator(shown, PAGE_SIZE).get_page(request.GET.get("page"))
    labels = dict(events.EVENT_TYPES)
    response = render(
        request,
        "connectors/webhooks/webhook_detail.html",
        {
            "section": SECTION,
            "subscription": subscription,
            "event_type_labels": [labels.get(t, t) for t in subscription.event_types],
            "page_obj": page,
            "deliveries": page.object_list,
            "state": state,
            "states": STATE_FILTERS,
            "can_manage": grants.can_manage_connectors(),
            "secret": secret,
            "created": created,
            "now": timezone.now(),
            "retry_delays": [_delay_words(d) for d in delivery.retry_schedule()[1:]],
            "timeout": delivery.send_timeout(),
        },
        status=status,
    )
    return _no_store(response) if secret else response


@require_GET
def webhook_detail(request, pk: int):
    grants = _viewer_grants(request)
    return _detail(request, _subscription(pk), grants=grants)


# Changes ---------------------------------------------------------------------------------------


def _form_page(request, form, *, subscription=None, status=200):
    return render(
        request,
        "connectors/webhooks/webhook_form.html",
        {"section": SECTION, "form": form, "subscription": subscription},
        status=status,
    )


@require_http_methods(["GET", "POST"])
def webhook_create(request):
    grants = _require_manager(request, "create a webhook subscription")
    if request.method == "GET":
        return _form_page(request, SubscriptionForm(submit="Create subscription"))
    form = SubscriptionForm(request.POST, submit="Create subscription")
    if form.is_valid():
        try:
            subscription, secret = services.subscription_create(
                request.user, **form.service_arguments()
            )
        except ValidationError as invalid:
            form.add_service_errors(invalid)
        else:
            return _detail(request, subscription, grants=grants, secret=secret, created=True)
    return _form_page(request, form)


@require_http_methods(["GET", "POST"])
def webhook_edit(request, pk: int):
    _require_manager(request, f"change webhook subscription {pk}")
    subscription = _subscription(pk)
    if request.method == "GET":
        initial = {
            "name": subscription.name,
            "url": subscription.url,
            "event_types": subscription.event_types,
            "enabled": subscription.enabled,
        }
        return _form_page(request, SubscriptionForm(initial=initial), subscription=subscription)
    form = SubscriptionForm(request.POST)
    if form.is_valid():
        try:
            services.subscription_update(
                request.user, subscription_id=subscription.pk, **form.service_arguments()
            )
        except ValidationError as invalid:
            form.add_service_errors(invalid)
        else:
            messages.success(request, f"Subscription “{form.cleaned_data['name']}” saved.")
            return redirect("connectors:webhook_detail", pk=subscription.pk)
    return _form_page(request, form, subscription=subscription)


@require_http_methods(["GET", "POST"])
def webhook_delete(request, pk: int):
    _require_manager(request, f"delete webhook subscription {pk}")
    subscription = _subscription(pk)
    if request.method == "GET":
        return render(
            request,
            "connectors/webhooks/webhook_delete.html",
            {
                "section": SECTION,
                "subscription": subscription,
                "pending": subscription.deliveries.filter(state=DeliveryState.PENDING).count(),
            },
        )
    try:
        services.subscription_delete(request.user, subscription_id=subscription.pk)
    except ValidationError as invalid:
        messages.error(request, " ".join(invalid.messages))
        return redirect("connectors:webhook_detail", pk=subscription.pk)
    messages.success(request, f"Subscription “{subscription.name}” deleted.")
    return redirect("connectors:webhook_list")


@require_POST
def webhook_rotate(request, pk: int):
    grants = _require_manager(request, f"rotate the secret of webhook subscription {pk}")
    subscription = _subscription(pk)
    try:
        subscription, secret = services.subscription_rotate_secret(
            request.user, subscription_id=subscription.pk
        )
    except ValidationError as invalid:
        messages.error(request, " ".join(invalid.messages))
        return redirect("connectors:webhook_detail", pk=subscription.pk)
    return _detail(request, subscription, grants=grants, secret=secret)


@require_POST
def webhook_test(request, pk: int):
    _require_manager(request, f"send a test event to webhook subscription {pk}")
    subscription = _subscription(pk)
    try:
        test = services.subscription_send_test(request.user, subscription_id=subscription.pk)
    except ValidationError as invalid:
        messages.error(request, f"No test event sent: {' '.join(invalid.messages)}")
    else:
        messages.success(
            request,
            f"Test event {test.message_id} queued: a worker sends it now. Reload the page to "
            "see the receiver's answer.",
        )
    return redirect("connectors:webhook_detail", pk=subscription.pk)


@require_POST
def webhook_retry(request, pk: int, delivery_pk: int):
    _require_manager(request, f"retry a delivery of webhook subscription {pk}")
    subscription = _subscription(pk)
    found = get_object_or_404(
        WebhookDelivery, pk=positive_int(delivery_pk) or 0, subscription=subscription
    )
    try:
        services.delivery_retry(request.user, delivery_id=found.pk)
    except ValidationError as invalid:
        messages.error(request, f"Not retried: {' '.join(invalid.messages)}")
    else:
        messages.success(
            request, f"Delivery {found.message_id} queued again: a worker tries it now."
        )
    return redirect("connectors:webhook_detail", pk=subscription.pk)
