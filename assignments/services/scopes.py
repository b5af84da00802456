"""The resource tree: create, rename, move and remove scopes.

Authorization matches on path prefixes (a role held at a scope holds at every scope below
it), so a scope's path and every path below it change together: one set-based UPDATE of the
locked subtree, in the transaction that writes the audit event. The tree's shape
(`ALLOWED_CHILDREN`) is enforced here, and every refusal names the rule it applies.

Who may change the tree below a scope: a superuser, the system, or an actor holding
resources.manage in force there (`authz.require_manage_tree`); a move needs it at both the
old and the new parent. The `*_problems` functions are the checks each service makes, for
forms that want to show them on their fields before anything is written.
"""

from django.core.exceptions import ValidationError
from django.core.validators import validate_slug
from django.db import transaction
from django.db.models import CharField, F, Value
from django.db.models.functions import Concat, Substr
from django.utils import timezone

from assignments import authz
from assignments.models import (
    ALLOWED_CHILDREN,
    PATH_SEGMENTS,
    Assignment,
    RoleRequest,
    Scope,
    ScopeKind,
)
from audit import log as audit_log
from pim_portal.actor import Actor

PLURALS = {
    ScopeKind.MANAGEMENT_GROUP: "management groups",
    ScopeKind.SUBSCRIPTION: "subscriptions",
    ScopeKind.RESOURCE_GROUP: "resource groups",
    ScopeKind.RESOURCE: "resources",
}


def scope_snapshot(scope: Scope) -> dict:
    """What the audit log records of a scope."""
    return {
        "name": scope.name,
        "slug": scope.slug,
        "kind": scope.kind,
        "path": scope.path,
        "parent": scope.parent.path if scope.parent_id else None,
    }


def _where(scope: Scope) -> str:
    return "the directory root" if scope.is_root else f"{scope} ({scope.path})"


def _path_under(parent: Scope, kind: str, slug: str) -> str:
    return f"{parent.path}{PATH_SEGMENTS[kind]}/{slug}/"


def _refuse(problems: list[str]) -> None:
    if problems:
        raise ValidationError(problems)


# --- The checks ----------------------------------------------------------------------------


def name_problems(name: str) -> list[str]:
    return [] if (name or "").strip() else ["A scope needs a name."]


def slug_problems(slug: str) -> list[str]:
    if not slug:
        return ["A scope needs a slug: the part of its path that names it."]
    try:
        validate_slug(slug)
    except ValidationError:
        return [
            f"The slug '{slug}' may contain only letters, numbers, underscores and hyphens: "
            "it becomes part of the scope's path."
        ]
    return []


def placement_problems(*, parent: Scope | None, kind: str) -> list[str]:
    """The tree's shape: directory › management groups › subscriptions › resource groups ›
    resources (ALLOWED_CHILDREN); only the root has no parent, and there is one root."""
    if kind not in ScopeKind.values:
        return [f"'{kind}' is not a kind of scope."]
    if kind == ScopeKind.ROOT:
        return ["There is one directory root: no other scope can be of kind Directory."]
    label = ScopeKind(kind).label.lower()
    if parent is None:
        return [f"A {label} needs a parent scope: only the directory root has none."]
    allowed = [k for k in ScopeKind if k in ALLOWED_CHILDREN[ScopeKind(parent.kind)]]
    if kind in allowed:
        return []
    if not allowed:
        return [f"A {label} cannot be placed under {_where(parent)}: a resource has no children."]
    only = " and ".join(PLURALS[k] for k in allowed)
    return [f"A {label} cannot be placed under {_where(parent)}: only {only} can."]


def _path_problems(*, path: str, kind: str, slug: str, parent: Scope, scope_pk=None):
    """Paths are unique, and compared ignoring case as resource ids are (SQLite's prefix
    match ignores case too, so two paths differing only in case would share a subtree)."""
    taken = Scope.objects.filter(path__iexact=path).exclude(pk=scope_pk).exists()
    if not taken:
        return []
    label = ScopeKind(kind).label.lower()
    return [
        f"Another {label} with the slug '{slug}' already sits under {_where(parent)}: "
        "slugs are unique among a scope's children."
    ]


def creation_problems(*, parent: Scope | None, kind: str, slug: str) -> list[str]:
    problems = placement_problems(parent=parent, kind=kind) + slug_problems(slug)
    if problems:
        return problems
    return _path_problems(path=_path_under(parent, kind, slug), kind=kind, slug=slug, parent=parent)


def rename_problems(*, scope: Scope, slug: str) -> list[str]:
    if slug == scope.slug:
        return []
    if scope.is_root:
        return ["The directory root's slug cannot change: its path is always /."]
    return slug_problems(slug) or _path_problems(
        path=_path_under(scope.parent, scope.kind, slug),
        kind=scope.kind,
        slug=slug,
        parent=scope.parent,
        scope_pk=scope.pk,
    )


def move_problems(*, scope: Scope, new_parent: Scope | None, slug: str | None = None) -> list:
    """`slug`: the slug the scope will have there (the admin renames before it moves)."""
    if scope.is_root:
        return ["The directory root cannot be moved: it is the top of the tree."]
    if new_parent is not None and new_parent.path.startswith(scope.path):
        return [
            f"{scope} cannot be moved under itself or one of its own descendants "
            f"({new_parent.path} is inside {scope.path})."
        ]
    problems = placement_problems(parent=new_parent, kind=scope.kind)
    if problems:
        return problems
    slug = scope.slug if slug is None else slug
    return _path_problems(
        path=_path_under(new_parent, scope.kind, slug),
        kind=scope.kind,
        slug=slug,
        parent=new_parent,
        scope_pk=scope.pk,
    )


def removal_problems(*, scope: Scope, at=None) -> list[str]:
    """A scope goes only when nothing hangs on it: no children, no assignment still in force
    or to come, and no history (assignments and requests keep their scope)."""
    if scope.is_root:
        return ["The directory root cannot be removed: it is the top of the tree."]
    problems = []
    children = list(scope.children.order_by("path").values_list("name", flat=True)[:6])
    if children:
        shown = ", ".join(children[:5]) + (", …" if len(children) > 5 else "")
        problems.append(f"{scope} still has scopes below it ({shown}): move or remove them first.")
    below = Assignment.objects.at_or_below(scope)
    live = below.not_ended(at or timezone.now()).count()
    if live:
        problems.append(
            f"{scope} has {live} assignment{'s' if live != 1 else ''} at or below it that "
            f"{'has' if live == 1 else 'have'} not ended: remove them first."
        )
    past = below.count() - live
    requests = RoleRequest.objects.filter(scope__path__startswith=scope.path).count()
    if past or requests:
        problems.append(
            f"{scope} keeps the history of {past} past assignment{'s' if past != 1 else ''} "
            f"and {requests} request{'s' if requests != 1 else ''}, which would go with it: "
            "it cannot be removed."
        )
    return problems


# --- The services --------------------------------------------------------------------------


def _record(action: str, *, actor: Actor, scope: Scope, message: str, **kw):
    return audit_log.record(
        action=action,
        actor=actor,
        target=scope,
        scope=scope.path,
        message=message,
        **kw,
    )


def _lock(scope: Scope) -> Scope:
    """The scope's row, locked and read afresh (its path may have moved meanwhile)."""
    return Scope.objects.select_for_update(of=("self",)).select_related("parent").get(pk=scope.pk)


def _rewrite_subtree(*, old_path: str, new_path: str, depth_shift: int) -> int:
    """Give the scope at `old_path` and every scope below it their new path and depth, in one
    UPDATE. Returns how many descendants were rewritten."""
    below = Scope.objects.filter(path__startswith=old_path)
    # Lock the subtree first: a scope created or moved under it meanwhile waits for us.
    locked = list(below.select_for_update().values_list("pk", flat=True))
    if old_path != new_path or depth_shift:
        below.update(
            path=Concat(
                Value(new_path), Substr("path", len(old_path) + 1), output_field=CharField()
            ),
            depth=F("depth") + depth_shift,
        )
    return len(locked) - 1


def scope_create(*, actor, parent: Scope, kind: str, name: str, slug: str) -> Scope:
    """A new scope under `parent`, of a kind the tree allows there, with a slug unique among
    the parent's children."""
    actor = Actor.of(actor)
    authz.require_manage_tree(actor, parent)
    name = (name or "").strip()
    with transaction.atomic():
        parent = _lock(parent) if parent is not None else None  # one child at a time
        _refuse(name_problems(name) + creation_problems(parent=parent, kind=kind, slug=slug))
        scope = Scope(parent=parent, kind=kind, name=name, slug=slug)
        scope.save()
        _record(
            "pim.scope.created",
            actor=actor,
            scope=scope,
            after=scope_snapshot(scope),
            message=f"{scope} created under {_where(parent)}.",
        )
    return scope


def scope_rename(*, actor, scope: Scope, name: str | None = None, slug: str | None = None):
    """A new name and/or slug. A new slug is a new path for the scope and everything below
    it, rewritten in the same transaction, so grants held there follow it."""
    actor = Actor.of(actor)
    authz.require_manage_tree(actor, scope.parent if scope.parent_id else None)
    with transaction.atomic():
        scope = _lock(scope)
        name = scope.name if name is None else name.strip()
        slug = scope.slug if slug is None else slug
        _refuse(name_problems(name) + rename_problems(scope=scope, slug=slug))
        if (name, slug) == (scope.name, scope.slug):
            return scope
        before = scope_snapshot(scope)
        new_path = scope.path if scope.is_root else _path_under(scope.parent, scope.kind, slug)
        Scope.objects.filter(pk=scope.pk).update(name=name, slug=slug)
        rewritten = _rewrite_subtree(old_path=scope.path, new_path=new_path, depth_shift=0)
        scope.name, scope.slug, scope.path = name, slug, new_path
        _record(
            "pim.scope.renamed",
            actor=actor,
            scope=scope,
            before=before,
            after={**scope_snapshot(scope), "descendants_rewritten": rewritten},
            message=f"{before['name']} renamed to {scope.name} ({before['path']} → "
            f"{scope.path}; {rewritten} scopes below it rewritten).",
        )
    return scope


def scope_move(*, actor, scope: Scope, new_parent: Scope) -> Scope:
    """The scope, and everything below it, placed under another parent of an allowed kind
    (never under itself or its own descendant); every path below is rewritten at once."""
    actor = Actor.of(actor)
    old_parent = scope.parent if scope.parent_id else None
    authz.require_manage_tree(actor, old_parent, new_parent)
    with transaction.atomic():
        scope = _lock(scope)
        new_parent = _lock(new_parent) if new_parent is not None else None
        _refuse(move_problems(scope=scope, new_parent=new_parent))
        if new_parent.pk == scope.parent_id:
            return scope
        before = scope_snapshot(scope)
        new_path = _path_under(new_parent, scope.kind, scope.slug)
        Scope.objects.filter(pk=scope.pk).update(parent=new_parent)
        rewritten = _rewrite_subtree(
            old_path=scope.path,
            new_path=new_path,
            depth_shift=new_parent.depth + 1 - scope.depth,
        )
        scope.parent, scope.path, scope.depth = new_parent, new_path, new_parent.depth + 1
        _record(
            "pim.scope.moved",
            actor=actor,
            scope=scope,
            before=before,
            after={**scope_snapshot(scope), "descendants_rewritten": rewritten},
            message=f"{scope} moved from {before['parent']} to {new_parent.path} "
            f"({rewritten} scopes below it rewritten).",
        )
    return scope


def scope_remove(*, actor, scope: Scope) -> None:
    """Remove a scope that nothing hangs on (see `removal_problems`); the role settings
    overridden at it go with it."""
    actor = Actor.of(actor)
    authz.require_manage_tree(actor, scope.parent if scope.parent_id else None)
    with transaction.atomic():
        scope = _lock(scope)
        _refuse(removal_problems(scope=scope))
        policies = scope.policies.count()
        _record(
            "pim.scope.removed",
            actor=actor,
            scope=scope,
            before={**scope_snapshot(scope), "role_settings_removed": policies},
            message=f"{scope} removed from {_where(scope.parent)}"
            + (f", with {policies} role settings overridden there." if policies else "."),
        )
        scope.delete()
