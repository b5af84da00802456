"""The connector pages: connectors, their mappings, provisioning and drift findings.

Directory viewers (`can_view_connectors`) see them; Global Administrators and Privileged Role
Administrators (`can_manage_connectors`) change them, through the services. Anyone else is
refused, audited: 403 for the list, 404 for a connector or mapping (its existence is private).
No page ever shows a secret: a connector holds only the reference of its password.
"""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db import IntegrityError
from django.db.models import Count, F, IntegerField, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.forms.utils import pretty_name
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from assignments import authz
from connectors import services
from connectors.forms import ConnectorForms, MappingForm, MappingUpdateForm
from connectors.models import Connector, DriftFinding, Mapping, Provisioning, ProvisioningState
from connectors.queries import status_counts
from connectors.targets import TargetError, kind, kind_choices
from pim_portal.params import choice, positive_int

PAGE_SIZE = 25
ROWS_PAGE_SIZE = 50
CAPPED = 10  # findings and failures shown on a connector's page; "see all" has the rest
MAPPING_FINDINGS_CAPPED = 20

MANAGERS = "only Global Administrators and Privileged Role Administrators manage connectors"
VIEWERS = "only those who may view directory roles see connectors"
FINDING_FILTERS = [("open", "Open"), ("resolved", "Resolved"), ("all", "All")]
SECTION = "connectors"
State = ProvisioningState


# --- Who may see and change -----------------------------------------------------------------


def _require_view(request):
    grants = authz.request_grants(request)
    if not grants.can_view_connectors():
        authz.deny(request.user, what=f"view the connectors ({VIEWERS})")
    return grants


def _require_manage(request, what: str, target=None):
    grants = authz.request_grants(request)
    if not grants.can_manage_connectors():
        authz.deny(request.user, what=f"{what} ({MANAGERS})", target=target)
    return grants


def _connector_for_viewer(request, pk) -> Connector:
    """The connector, for a viewer; a 404 (audited) when it does not exist or they may not
    see connectors."""
    number = positive_int(pk)
    connector = Connector.objects.filter(pk=number).first() if number else None
    if connector is None or not authz.request_grants(request).can_view_connectors():
        authz.deny(request.user, what=f"view connector {pk}", not_found=True)
    return connector


def _connector_for_manager(request, pk, what: str) -> Connector:
    connector = _connector_for_viewer(request, pk)
    _require_manage(request, f"{what} {connector.name}", target=connector)
    return connector


def _mapping_for_viewer(request, pk) -> Mapping:
    number = positive_int(pk)
    mappings = Mapping.objects.select_related("connector", "role", "scope")
    mapping = mappings.filter(pk=number).first() if number else None
    if mapping is None or not authz.request_grants(request).can_view_connectors():
        authz.deny(request.user, what=f"view connector mapping {pk}", not_found=True)
    return mapping


def _mapping_for_manager(request, pk, what: str) -> Mapping:
    mapping = _mapping_for_viewer(request, pk)
    _require_manage(request, f"{what} {mapping.target} of {mapping.connector.name}", mapping)
    return mapping


def _target_of(connector: Connector):
    """The connector's kind, or None for a kind this installation no longer has."""
    try:
        return kind(connector.kind)
    except TargetError:
        return None


def _kind_label(connector: Connector) -> str:
    target = _target_of(connector)
    return target.label if target else f"Unknown kind {connector.kind!r}"


def _page(request, rows, size: int):
    return Paginator(rows, size).get_page(request.GET.get("page"))


def _count_of(queryset, outer: str):
    """A count per outer row, as a subquery (no join that multiplies the rows)."""
    counted = (
        queryset.filter(**{outer: OuterRef("pk")})
        .order_by()
        .values(outer)
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(counted, output_field=IntegerField()), 0)


# --- Connectors -----------------------------------------------------------------------------


@require_http_methods(["GET", "HEAD"])
def connector_list(request):
    grants = _require_view(request)
    connectors = Connector.objects.annotate(
        mapping_count=_count_of(Mapping.objects.all(), "connector"),
        open_findings=_count_of(
            DriftFinding.objects.filter(resolved_at=None), "mapping__connector"
        ),
    )
    page = _page(request, connectors, PAGE_SIZE)
    rows = list(page.object_list)
    mapping_of = dict(
        Mapping.objects.filter(connector__in=rows).values_list("pk", "connector").order_by()
    )
    counts = status_counts(list(mapping_of))
    for connector in rows:
        connector.kind_label = _kind_label(connector)
        connector.provisioned = connector.failed = 0
    by_pk = {connector.pk: connector for connector in rows}
    for mapping, states in counts.items():
        connector = by_pk[mapping_of[mapping]]
        connector.provisioned += states.get(State.PROVISIONED, 0)
        connector.failed += states.get(State.FAILED, 0)
    return render(
        request,
        "connectors/connector_list.html",
        {
            "page_obj": page,
            "connectors": rows,
            "can_manage": grants.can_manage_connectors(),
            "section": SECTION,
        },
    )


@require_http_methods(["GET", "HEAD"])
def connector_create(request):
    """Step 1: choose the kind of target."""
    _require_view(request)
    _require_manage(request, "create a connector")
    # Plain values: a template would call a class it is given.
    kinds = [
        {"name": name, "label": label, "object_label": kind(name).object_label}
        for name, label in kind_choices()
    ]
    return render(request, "connectors/connector_kind.html", {"kinds": kinds, "section": SECTION})


@require_http_methods(["GET", "HEAD", "POST"])
def connector_create_kind(request, kind_name: str):
    """Step 2: the connection and the kind's options."""
    _require_view(request)
    _require_manage(request, "create a connector")
    if kind_name not in dict(kind_choices()):
        raise Http404("No such kind of connector.")
    target = kind(kind_name)
    forms = ConnectorForms(target, request.POST if request.method == "POST" else None)
    if request.method == "POST" and forms.is_valid():
        values = forms.values()
        try:
            connector = services.connector_create(request.user, kind=kind_name, **values)
        except IntegrityError:  # made by someone else meanwhile
            forms.connection.add_error("name", "A connector has this name already.")
        else:
            messages.success(
                request,
                f"Connector {connector} created. Add mappings to make roles true in it, and "
                "test the connection.",
            )
            return redirect("connectors:connector_detail", connector.pk)
    return render(
        request,
        "connectors/connector_form.html",
        {"forms": forms, "kind_label": target.label, "connector": None, "section": SECTION},
    )


def _options_shown(connector: Connector) -> list[tuple[str, object]]:
    """The options that are set, under the labels of the kind's form ("Yes" for a box ticked)."""
    target = _target_of(connector)
    fields = target.options_form.base_fields if target is not None else {}
    shown = []
    for key, value in (connector.options or {}).items():
        if value in ("", None, False):
            continue
        field = fields.get(key)
        label = str(field.label) if field is not None and field.label else pretty_name(key)
        shown.append((label, "Yes" if value is True else value))
    return shown


@require_http_methods(["GET", "HEAD"])
def connector_detail(request, pk: int):
    connector = _connector_for_viewer(request, pk)
    grants = authz.request_grants(request)
    mappings_page = _page(
        request, connector.mappings.select_related("role", "scope"), ROWS_PAGE_SIZE
    )
    mappings = list(mappings_page.object_list)
    counts = status_counts([m.pk for m in mappings])
    for mapping in mappings:
        states = counts[mapping.pk]
        mapping.provisioned = states.get(State.PROVISIONED, 0)
        mapping.pending = states.get(State.PENDING_PROVISIONING, 0) + states.get(
            State.PENDING_DEPROVISIONING, 0
        )
        mapping.failed = states.get(State.FAILED, 0)
    findings = DriftFinding.objects.filter(mapping__connector=connector, resolved_at=None)
    failures = Provisioning.objects.filter(mapping__connector=connector, state=State.FAILED)
    findings_shown = list(
        findings.select_related("user", "mapping__role", "mapping__scope").order_by(
            "-first_seen_at", "pk"
        )[:CAPPED]
    )
    failures_shown = list(
        failures.select_related("user", "mapping__role", "mapping__scope").order_by(
            "failing_since", "pk"
        )[:CAPPED]
    )
    return render(
        request,
        "connectors/connector_detail.html",
        {
            "connector": connector,
            "kind_label": _kind_label(connector),
            "object_label": getattr(_target_of(connector), "object_label", "Target object"),
            "options": _options_shown(connector),
            "page_obj": mappings_page,
            "mappings": mappings,
            "findings": findings_shown,
            "findings_count": findings.count(),
            "failures": failures_shown,
            "failures_count": failures.count(),
            "capped": CAPPED,
            "can_manage": grants.can_manage_connectors(),
            "section": SECTION,
        },
    )


@require_http_methods(["GET", "HEAD", "POST"])
def connector_update(request, pk: int):
    connector = _connector_for_manager(request, pk, "change the connector")
    target = _target_of(connector)
    if target is None:
        messages.error(request, f"This installation has no connector kind {connector.kind!r}.")
        return redirect("connectors:connector_detail", connector.pk)
    data = request.POST if request.method == "POST" else None
    forms = ConnectorForms(target, data, connector=connector)
    if request.method == "POST" and forms.is_valid():
        services.connector_update(request.user, connector=connector, **forms.values())
        messages.success(request, f"Connector {connector} saved.")
        return redirect("connectors:connector_detail", connector.pk)
    return render(
        request,
        "connectors/connector_form.html",
        {"forms": forms, "kind_label": target.label, "connector": connector, "section": SECTION},
    )


@require_http_methods(["GET", "HEAD", "POST"])
def connector_delete(request, pk: int):
    connector = _connector_for_manager(request, pk, "delete the connector")
    if request.method == "POST":
        name = str(connector)
        services.connector_delete(request.user, connector=connector)
        messages.success(
            request,
            f"Connector {name} deleted. The members it put in its target stay there.",
        )
        return redirect("connectors:connector_list")
    held = Provisioning.objects.filter(
        mapping__connector=connector, state__in=[State.PROVISIONED, State.PENDING_DEPROVISIONING]
    ).count()
    return render(
        request,
        "connectors/connector_delete.html",
        {
            "connector": connector,
            "mapping_count": connector.mappings.count(),
            "held_count": held,
            "section": SECTION,
        },
    )


@require_POST
def connector_test(request, pk: int):
    connector = _connector_for_manager(request, pk, "test the connector")
    problems = services.connector_test(request.user, connector=connector)
    if problems:
        for problem in problems:
            messages.error(request, f"Test of {connector} failed: {problem}")
    else:
        messages.success(request, "Connection works: signed in and found every mapped object.")
    return redirect("connectors:connector_detail", connector.pk)


@require_POST
def connector_reconcile(request, pk: int):
    connector = _connector_for_manager(request, pk, "reconcile the connector")
    services.connector_reconcile(request.user, connector=connector)
    if connector.enabled:
        messages.success(
            request,
            f"Reconciliation of {connector} requested: a worker reads every mapped object, "
            "records access granted outside PIM and provisions what differs.",
        )
    else:
        messages.warning(
            request, f"{connector} is disabled: reconciliation reads nothing until it is enabled."
        )
    return redirect("connectors:connector_detail", connector.pk)


@require_POST
def connector_retry(request, pk: int):
    connector = _connector_for_manager(request, pk, "retry the failed provisioning of")
    count = services.connector_retry(request.user, connector=connector)
    if count:
        messages.success(request, f"{count} failed grants or revocations are tried again now.")
    else:
        messages.info(request, "Nothing has failed: there is nothing to retry.")
    return redirect("connectors:connector_detail", connector.pk)


@require_http_methods(["GET", "HEAD"])
def connector_findings(request, pk: int):
    """Every drift finding of the connector, open by default; by mapping, in the URL."""
    connector = _connector_for_viewer(request, pk)
    status = choice(request.GET.get("status"), dict(FINDING_FILTERS), "open")
    findings = DriftFinding.objects.filter(mapping__connector=connector)
    if status == "open":
        findings = findings.filter(resolved_at=None)
    elif status == "resolved":
        findings = findings.exclude(resolved_at=None)
    mapping = None
    mapping_pk = positive_int(request.GET.get("mapping"))
    if mapping_pk:
        mapping = connector.mappings.filter(pk=mapping_pk).first()
        findings = findings.filter(mapping=mapping) if mapping else findings.none()
    page = _page(
        request,
        findings.select_related("user", "mapping__role", "mapping__scope").order_by(
            "-first_seen_at", "pk"
        ),
        ROWS_PAGE_SIZE,
    )
    return render(
        request,
        "connectors/connector_findings.html",
        {
            "connector": connector,
            "page_obj": page,
            "findings": page.object_list,
            "status": status,
            "filters": FINDING_FILTERS,
            "mapping": mapping,
            "section": SECTION,
        },
    )


@require_http_methods(["GET", "HEAD"])
def connector_failures(request, pk: int):
    """Every failed grant or revocation of the connector, the longest failing first."""
    connector = _connector_for_viewer(request, pk)
    failures = (
        Provisioning.objects.filter(mapping__connector=connector, state=State.FAILED)
        .select_related("user", "mapping__role", "mapping__scope")
        .order_by("failing_since", "pk")
    )
    page = _page(request, failures, ROWS_PAGE_SIZE)
    return render(
        request,
        "connectors/connector_failures.html",
        {
            "connector": connector,
            "page_obj": page,
            "failures": page.object_list,
            "can_manage": authz.request_grants(request).can_manage_connectors(),
            "section": SECTION,
        },
    )


# --- Mappings -------------------------------------------------------------------------------


@require_http_methods(["GET", "HEAD", "POST"])
def mapping_create(request, pk: int):
    connector = _connector_for_manager(request, pk, "add a mapping to the connector")
    target = _target_of(connector)
    if target is None:
        messages.error(request, f"This installation has no connector kind {connector.kind!r}.")
        return redirect("connectors:connector_detail", connector.pk)
    form = MappingForm(request.POST if request.method == "POST" else None, target=target)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            mapping = services.mapping_create(
                request.user,
                connector=connector,
                role=data["role"],
                scope=data["scope"],
                target=data["target"],
                enforce=data["enforce"],
            )
        except ValidationError as refusal:
            form.add_error(None, refusal)  # on the target field: the input stays
        else:
            if connector.enabled:
                done = "A worker puts in whoever holds the role now."
            else:
                done = "The connector is disabled: nothing was read or changed in the target."
            messages.success(request, f"Mapping to {mapping.target} saved. {done}")
            return redirect("connectors:mapping_detail", mapping.pk)
    return render(
        request,
        "connectors/mapping_form.html",
        {
            "form": form,
            "connector": connector,
            "object_label": target.object_label,
            "scope_paths": MappingForm.scope_suggestions(),
            "section": SECTION,
        },
    )


@require_http_methods(["GET", "HEAD"])
def mapping_detail(request, pk: int):
    mapping = _mapping_for_viewer(request, pk)
    grants = authz.request_grants(request)
    state = choice(request.GET.get("state"), State.values, "")
    rows = mapping.provisionings.select_related("user", "via_assignment__principal_group")
    if state:
        rows = rows.filter(state=state)
    page = _page(request, rows.order_by("user__username", "pk"), ROWS_PAGE_SIZE)
    counts = status_counts([mapping.pk])[mapping.pk]
    findings = list(
        mapping.findings.select_related("user").order_by(
            F("resolved_at").desc(nulls_first=True), "-first_seen_at", "pk"
        )[: MAPPING_FINDINGS_CAPPED + 1]
    )
    target = _target_of(mapping.connector)
    return render(
        request,
        "connectors/mapping_detail.html",
        {
            "mapping": mapping,
            "connector": mapping.connector,
            "object_label": getattr(target, "object_label", "Target object"),
            "page_obj": page,
            "rows": page.object_list,
            "state": state,
            "states": [(value, label, counts.get(value, 0)) for value, label in State.choices],
            "total": sum(counts.values()),
            "findings": findings[:MAPPING_FINDINGS_CAPPED],
            "more_findings": len(findings) > MAPPING_FINDINGS_CAPPED,
            "can_manage": grants.can_manage_connectors(),
            "section": SECTION,
        },
    )


@require_http_methods(["GET", "HEAD", "POST"])
def mapping_update(request, pk: int):
    mapping = _mapping_for_manager(request, pk, "change the mapping to")
    data = request.POST if request.method == "POST" else None
    form = MappingUpdateForm(data, initial={"enforce": mapping.enforce})
    if request.method == "POST" and form.is_valid():
        enforce = form.cleaned_data["enforce"]
        services.mapping_update(request.user, mapping=mapping, enforce=enforce)
        if enforce:
            done = "Members no assignment explains are removed at the next reconciliation."
        else:
            done = "Members no assignment explains are reported, not removed."
        messages.success(request, f"Mapping to {mapping.target} saved. {done}")
        return redirect("connectors:mapping_detail", mapping.pk)
    return render(
        request,
        "connectors/mapping_update.html",
        {"form": form, "mapping": mapping, "connector": mapping.connector, "section": SECTION},
    )


@require_http_methods(["GET", "HEAD", "POST"])
def mapping_delete(request, pk: int):
    mapping = _mapping_for_manager(request, pk, "delete the mapping to")
    connector = mapping.connector
    if request.method == "POST":
        target = mapping.target
        services.mapping_delete(request.user, mapping=mapping)
        messages.success(
            request, f"Mapping to {target} deleted. The members it put there stay there."
        )
        return redirect("connectors:connector_detail", connector.pk)
    held = mapping.provisionings.filter(
        state__in=[State.PROVISIONED, State.PENDING_DEPROVISIONING]
    ).count()
    return render(
        request,
        "connectors/mapping_delete.html",
        {"mapping": mapping, "connector": connector, "held_count": held, "section": SECTION},
    )
