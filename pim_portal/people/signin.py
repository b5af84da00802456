"""The sign-in pages: the password step (the portal's and the Django admin's), and the code
step of sign-in MFA, with its "More information required" enrolment for a user who has no
authenticator yet. The rules are in `pim_portal.signin_mfa`."""

from base64 import b32encode

from crispy_forms.helper import FormHelper
from crispy_forms.layout import Field, Layout, Submit
from django import forms
from django.contrib import admin, messages
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.views import LoginView
from django.core.exceptions import ValidationError
from django.http import HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters

from pim_portal import authenticators, mfa, signin_mfa, throttle
from pim_portal.forms import AuthenticatorAddForm


def _finish_password_step(request, user, next_url: str):
    """A right password: signed in, or on to the code step when MFA is required."""
    if signin_mfa.signin_mfa_required(user):
        return signin_mfa.begin(
            request,
            user,
            backend=user.backend,
            next_url=next_url,
            method=signin_mfa.METHOD_PASSWORD,
        )
    signin_mfa.complete(
        request,
        user,
        backend=user.backend,
        method=signin_mfa.METHOD_PASSWORD,
        mfa=signin_mfa.MFA_NONE,
    )
    return HttpResponseRedirect(next_url)


class SignInView(LoginView):
    """Django's sign-in page; a right password of a user who must do MFA leads to the code
    step instead of a session."""

    redirect_authenticated_user = True

    def form_valid(self, form):
        return _finish_password_step(self.request, form.get_user(), self.get_success_url())


class AdminSignInView(SignInView):
    """The Django admin's sign-in page under the same rule (so it is no way around MFA)."""

    authentication_form = AdminAuthenticationForm
    template_name = "admin/login.html"
    redirect_authenticated_user = False

    @method_decorator(login_not_required)
    @method_decorator(sensitive_post_parameters())
    @method_decorator(csrf_protect)
    @method_decorator(never_cache)
    def dispatch(self, request, *args, **kwargs):
        if request.method == "GET" and admin.site.has_permission(request):
            return HttpResponseRedirect(self.get_success_url())
        return super().dispatch(request, *args, **kwargs)

    def get_default_redirect_url(self):
        return reverse("admin:index")

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(
            admin.site.each_context(self.request),
            title="Log in",
            subtitle=None,
            app_path=self.request.get_full_path(),
            username=self.request.user.get_username(),
        )
        if not context.get(REDIRECT_FIELD_NAME):
            context[REDIRECT_FIELD_NAME] = reverse("admin:index")
        return context


class SignInCodeForm(forms.Form):
    code = forms.CharField(
        label="Code",
        max_length=8,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}
        ),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.helper = FormHelper()
        self.helper.form_tag = False
        self.helper.disable_csrf = True
        self.helper.layout = Layout(Field("code"), Submit("submit", "Verify", css_class="w-100"))


WRONG_CODE = "That code is not right. Enter the current code from your authenticator app."


def _locked_out(request, pending, user):
    pending.discard()
    return throttle.lockout_response(request, credentials=signin_mfa.credentials(user))


def _start_over(request, pending):
    if pending.expired:
        signin_mfa.expired(request, pending)
        messages.error(
            request, "You took too long to enter the code. Sign in again to get another try."
        )
    else:
        pending.discard()
    return redirect("login")


@login_not_required
@never_cache
@sensitive_post_parameters("code", "current_code")
def signin_code(request):
    """The code step: a code from one of the user's authenticators finishes the sign-in."""
    pending = signin_mfa.PendingSignIn(request)
    user = pending.user
    if user is None:
        return _start_over(request, pending)
    if signin_mfa.is_locked(request, user):
        if request.method == "POST":  # an attempt while locked restarts the cool-off
            signin_mfa.code_failed(request, user, why="a code was sent while locked out.")
        return _locked_out(request, pending, user)
    if not mfa.has_device(user):
        return _enrol(request, pending, user)
    form = SignInCodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if signin_mfa.verify(user, form.cleaned_data["code"]):
            signin_mfa.complete(
                request,
                user,
                backend=pending.backend,
                method=pending.method,
                mfa=signin_mfa.MFA_TOTP,
            )
            return HttpResponseRedirect(pending.next_url)
        if signin_mfa.code_failed(request, user, why="wrong or already used verification code."):
            return _locked_out(request, pending, user)
        form.add_error("code", ValidationError(WRONG_CODE, code="code_wrong"))
    return render(
        request,
        "people/signin_code.html",
        {"form": form, "pending_user": user, "time_limit": signin_mfa.time_limit()},
    )


def _enrol(request, pending, user):
    """More information required: add an authenticator app, whose first code signs in."""
    key = request.session.get(signin_mfa.SESSION_ENROL_SECRET)
    if not key:
        key = request.session[signin_mfa.SESSION_ENROL_SECRET] = mfa.new_secret()
    form = AuthenticatorAddForm(request.POST or None, needs_current_code=False)
    form.helper.layout[-1] = Submit("submit", "Add and sign in", css_class="w-100")
    if request.method == "POST" and form.is_valid():
        try:
            authenticators.authenticator_add(user=user, key=key, **form.cleaned_data)
        except ValidationError as error:
            # Audited by the service (pim.security.mfa_enrol_refused); counted here.
            if signin_mfa.count_failure(request, user):
                return _locked_out(request, pending, user)
            form.add_error(None, error)
        else:
            signin_mfa.complete(
                request,
                user,
                backend=pending.backend,
                method=pending.method,
                mfa=signin_mfa.MFA_TOTP,
            )
            messages.success(request, "Your authenticator app is set up, and you are signed in.")
            return HttpResponseRedirect(pending.next_url)
    device = mfa.unsaved_device(user, key)
    return render(
        request,
        "people/signin_enrol.html",
        {
            "form": form,
            "pending_user": user,
            "qr_svg": mfa.qr_svg(device),
            "secret": b32encode(device.bin_key).decode(),
        },
    )
