"""Who may manage, see and decide access reviews. Built on assignments.authz.

- Managing a review (create, change, stop, apply by hand) needs the right to manage every one
  of its roles at its scope: Privileged Role / Global Administrator for directory roles, Owner
  or User Access Administrator at or above the scope for resource roles.
- Seeing a review's pages needs the right to view them (Security Reader, Global Reader too).
- Deciding an item is for its reviewer: the named user on the item (the principal's manager,
  or the principal in self-review), else whoever holds the review permission on the review
  (its selected reviewers, or a manager review's fallback). Nobody decides their own access,
  except in self-review, and nobody decides once the instance has ended.
"""

from django.contrib.auth.models import Group
from django.db.models import Exists, OuterRef, Q

from assignments import authz
from assignments.models import RoleKind
from pim_portal.params import positive_int
from reviews.models import (
    REVIEW_PERMISSION,
    AccessReview,
    ReviewGroupObjectPermission,
    ReviewInstance,
    ReviewItem,
    ReviewUserObjectPermission,
)


def _may(grants: authz.Grants, review: AccessReview, manage: bool) -> bool:
    check = grants.can_manage_role if manage else grants.can_view_role
    return all(check(role, review.scope) for role in review.roles.all())


def may_manage(grants: authz.Grants, review: AccessReview) -> bool:
    return _may(grants, review, manage=True)


def may_view(grants: authz.Grants, review: AccessReview) -> bool:
    return _may(grants, review, manage=False)


def may_manage_roles(grants: authz.Grants, roles, scope) -> bool:
    """Whether a review of these roles at the scope may be created by the grants' holder."""
    return bool(roles) and all(grants.can_manage_role(role, scope) for role in roles)


def reviews_visible(grants: authz.Grants, action: str = "view"):
    """The reviews every role of which the grants let one see (or manage) at its scope."""
    reviews = AccessReview.objects.all()
    if grants.is_system:
        return reviews
    directory, tops = grants.visible_role_kinds_and_paths(action)
    if not directory:
        reviews = reviews.exclude(roles__kind=RoleKind.DIRECTORY)
    in_reach = Q(pk__in=[])
    for path in tops:
        in_reach |= Q(scope__path__startswith=path)
    resource_roles = AccessReview.roles.through.objects.filter(
        accessreview_id=OuterRef("pk"), role__kind=RoleKind.RESOURCE
    )
    return reviews.filter(in_reach | ~Exists(resource_roles))


_GROUP_IDS = "_pim_review_group_ids"  # where _group_ids keeps them on the user object


def named_review_ids(user) -> set[int]:
    """The reviews on which the user holds the review permission, directly or by a group.

    The user's groups first (a short list, kept on the user: `own_items` asks for them next),
    and the groups' permissions only for a member of one: building a query costs a page
    about half a millisecond, more than the database takes to answer it."""
    if user is None or not user.is_authenticated:
        return set()
    review = {"permission__codename": REVIEW_PERMISSION}
    named = ReviewUserObjectPermission.objects.filter(user=user, **review)
    named = named.values_list("content_object_id", flat=True)
    groups = _group_ids(user)
    if groups:
        by_group = ReviewGroupObjectPermission.objects.filter(group_id__in=groups, **review)
        named = named.union(by_group.values_list("content_object_id", flat=True))
    return set(named)


def _group_ids(user) -> list[int]:
    """The user's groups, read once per user object (a page asks up to three times)."""
    # A short list first: a correlated EXISTS per item made PostgreSQL test every one of
    # 16,000 items against the membership table.
    if _GROUP_IDS not in user.__dict__:
        user.__dict__[_GROUP_IDS] = list(
            Group.objects.filter(user=user).values_list("pk", flat=True)
        )
    return user.__dict__[_GROUP_IDS]


def own_items(user) -> Q:
    """Items about the user: their own assignment, or their group's reviewed as a whole."""
    own = Q(principal_user=user)
    if groups := _group_ids(user):  # (without a group, a condition less to build)
        own |= Q(principal_user__isnull=True, principal_group__in=groups)
    return own


def _not_own(user, review_is_self: bool) -> Q:
    if review_is_self:
        return Q()
    # Never theirs to decide (De Morgan of own_items, as the filters read best).
    not_own = ~Q(principal_user=user)
    if groups := _group_ids(user):
        not_own &= ~Q(principal_user__isnull=True, principal_group__in=groups)
    return not_own


def decidable_condition(user, named: set[int]) -> Q:
    """Items the user is the reviewer of (whatever the instance's state)."""
    mine = Q(reviewer=user) | Q(reviewer__isnull=True, instance__review_id__in=named)
    self_review = Q(instance__review__reviewer_type="self")
    return mine & (self_review | _not_own(user, review_is_self=False))


def decidable_items(user, instance: ReviewInstance, named: set[int] | None = None):
    """The items of the instance the user decides (empty when they are not a reviewer)."""
    named = named_review_ids(user) if named is None else named
    mine = Q(reviewer=user)
    if instance.review_id in named:
        mine |= Q(reviewer__isnull=True)
    return instance.items.filter(mine, _not_own(user, instance.review.is_self_review))


def is_reviewer(user, instance: ReviewInstance, named: set[int] | None = None) -> bool:
    return decidable_items(user, instance, named).exists()


def _missing(actor, what: str):
    authz.deny(actor, what=what, not_found=True)


def review_for_viewer(actor, review_id, grants: authz.Grants | None = None) -> AccessReview:
    """A review the actor may see; a 404 (audited) for one unknown or out of their reach."""
    grants = grants or authz.grants_for(actor)
    pk = positive_int(review_id)
    review = (
        AccessReview.objects.select_related("scope", "created_by")
        .prefetch_related("roles")
        .filter(pk=pk)
        .first()
        if pk
        else None
    )
    if review is None or not may_view(grants, review):
        _missing(actor, f"view access review {review_id}")
    return review


def review_for_manager(actor, review_id, grants: authz.Grants | None = None) -> AccessReview:
    """A review the actor may manage: 404 when they may not even see it, else 403."""
    grants = grants or authz.grants_for(actor)
    review = review_for_viewer(actor, review_id, grants)
    if not may_manage(grants, review):
        authz.deny(actor, what=f"manage access review {review_id}", target=review)
    return review


def require_manage(actor, review: AccessReview, grants: authz.Grants | None = None) -> None:
    grants = grants or authz.grants_for(actor)
    if not may_manage(grants, review):
        authz.deny(actor, what=f"manage access review {review.pk}", target=review)


def instance_for_viewer(actor, instance_id, grants: authz.Grants | None = None):
    """(instance, may view the whole review, the user's review permission ids) for a reviewer
    or someone who may see the review; a 404 (audited) for anyone else."""
    instance, sees_all, named = instance_in_reach(actor, instance_id, grants)
    user = getattr(actor, "user", actor)
    require_viewer(actor, instance_id, sees_all or is_reviewer(user, instance, named))
    return instance, sees_all, named


def instance_in_reach(actor, instance_id, grants: authz.Grants | None = None):
    """(instance, may view the whole review, the user's review permission ids), a 404 (audited)
    for an unknown id. Not a permission yet: who may not see the review is let in by
    `require_viewer` only as a reviewer (`instance_for_viewer` asks both; the instance page
    asks with what it reads of the reviewer's items anyway)."""
    grants = grants or authz.grants_for(actor)
    user = getattr(actor, "user", actor)
    pk = positive_int(instance_id)
    instances = ReviewInstance.objects.select_related("review__scope")
    try:
        instance = instances.prefetch_related("review__roles").get(pk=pk) if pk else None
    except ReviewInstance.DoesNotExist:
        instance = None
    if instance is None:
        _missing(actor, f"view access review instance {instance_id}")
    return instance, may_view(grants, instance.review), named_review_ids(user)


def require_viewer(actor, instance_id, sees_or_decides: bool) -> None:
    """The 404 (audited) of one who may neither see an instance's review nor decides an item
    of it."""
    if not sees_or_decides:
        _missing(actor, f"view access review instance {instance_id}")


def items_of_reviewer(user, named: set[int]):
    """Every item the user reviews, across instances (the inbox counts from it)."""
    return ReviewItem.objects.filter(decidable_condition(user, named))


def instance_for_reviewer(actor, instance_id, grants: authz.Grants | None = None):
    """An instance the actor reviews: a 404 for one they may not know of, a 403 (audited) for
    one they may see but do not review (an administrator or reader of the review)."""
    instance, sees_all, named = instance_for_viewer(actor, instance_id, grants)
    user = getattr(actor, "user", actor)
    if sees_all and not is_reviewer(user, instance, named):
        authz.deny(
            actor,
            what=f"decide items of access review instance {instance.pk}: not one of its reviewers",
            target=instance,
        )
    return instance, named
