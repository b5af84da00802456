from assignments.authz import grants_for
from assignments.models import Assignment


def test_privileged_role_administrator_may_manage_directory(pra):
    assert grants_for(pra).can_manage_directory()


def test_outsider_holds_nothing(outsider):
    assert not grants_for(outsider).can_view_directory()
    assert not Assignment.objects.for_user(outsider).exists()
