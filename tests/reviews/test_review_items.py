"""The rows of the instance page, written in Python (reviews.templatetags.review_items): every
value escaped, and the cells the template wrote, for who decides and who only reads."""

from datetime import UTC, datetime

from assignments.models import AssignmentKind, Role, Scope, ScopeKind
from reviews.models import Decision, ReviewItem
from reviews.templatetags.review_items import item_rows

ROLE = Role(pk=1, name="Owner <&>")
SCOPE = Scope(pk=2, name='Prod "web"', kind=ScopeKind.SUBSCRIPTION, path="/contoso/<prod>/")


def item(**fields) -> ReviewItem:
    """An unsaved item labelled as the view labels them."""
    fields.setdefault("principal_user_id", 7)
    row = ReviewItem(
        pk=42,
        principal_name="Ann <O'Neil>",
        role=ROLE,
        scope=SCOPE,
        kind=AssignmentKind.ELIGIBLE,
        assignment_end=datetime(2027, 1, 2, 3, 4, tzinfo=UTC),
        recommendation="deny",
        recommendation_reason="Never <b>activated</b>",
        decision=Decision.NOT_REVIEWED,
        **fields,
    )
    row.decision_label, row.decision_colour = "Not reviewed", "secondary"
    row.recommendation_label = "Deny"
    return row


def test_every_value_of_a_row_is_escaped():
    html = item_rows(
        [item(reason="<script>x</script>", decided_by_name="Bob & co")],
        can_decide=True,
        is_reviewer=True,
    )
    assert "<script>" not in html and "<b>" not in html
    assert "Ann &lt;O&#x27;Neil&gt;" in html
    assert '<td data-label="Role">Owner &lt;&amp;&gt;</td>' in html
    assert '<span title="/contoso/&lt;prod&gt;/">Subscription Prod &quot;web&quot;</span>' in html
    assert "&lt;script&gt;x&lt;/script&gt;" in html
    assert '<td data-label="Decided by">Bob &amp; co</td>' in html
    assert 'aria-label="Select Ann &lt;O&#x27;Neil&gt;: Owner &lt;&amp;&gt; at Subscription' in html


def test_a_checkbox_for_who_decides_and_the_reviewer_for_who_only_reads():
    row = item()
    deciding = item_rows([row], can_decide=True, is_reviewer=True)
    assert 'name="item" value="42" id="item-42"' in deciding
    assert 'data-label="Reviewer"' not in deciding
    reading = item_rows([row], can_decide=False, is_reviewer=False)
    assert 'name="item"' not in reading
    assert '<td data-label="Reviewer"><span class="text-muted">The review\'s reviewers' in reading


def test_a_long_reason_is_cut_and_a_missing_one_is_a_dash():
    long = item_rows([item(reason="x" * 250)], can_decide=False, is_reviewer=True)
    assert f">{'x' * 199}…</td>" in long
    empty = item_rows([item()], can_decide=False, is_reviewer=True)
    assert '<td data-label="Reason" class="text-break">—</td>' in empty
    assert '<td data-label="Decided by">—</td>' in empty


def test_a_group_reviewed_as_a_whole_and_a_deleted_principal_are_marked():
    group = item(principal_user_id=None, principal_group_id=5)
    deleted = item(principal_user_id=None)
    html = item_rows([group, deleted], can_decide=False, is_reviewer=True)
    assert '<i class="bi bi-people" aria-hidden="true"></i> Ann &lt;O&#x27;Neil&gt; ' in html
    assert '<span class="small text-muted">(group)</span>' in html
    assert 'Ann &lt;O&#x27;Neil&gt; <span class="small text-muted">(deleted)</span>' in html
