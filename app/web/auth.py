"""Signing in to the web app (issue 11): a login page backed by the catalog's accounts, sessions
that expire, logout, and OIDC through Streamlit's ``st.login`` when an ``[auth]`` section is
configured (``.streamlit/secrets.toml``), its users mapped to local ones by e-mail address = user
name.

Pages act as the signed-in user through :func:`get_acting` (an :class:`app.accounts.access.ActingService`),
so what a page may show or change is decided by the service layer's policy, not by the page.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import streamlit as st

from app.accounts.access import ActingService
from app.accounts.store import MIN_PASSWORD, Accounts, Principal
from model.errors import AuthenticationError, LlocoError, NotFoundError

if TYPE_CHECKING:
    from app.core.service import LlocoService

PRINCIPAL_KEY = "principal"
SIGNED_IN_AT = "signed_in_at"
_injected: dict[str, Principal] = {}


def use_principal(principal: Principal | None) -> None:
    """Act as ``principal`` without signing in (tests that drive a page directly); None undoes it."""
    _injected.clear()
    if principal is not None:
        _injected["principal"] = principal


def current_principal(service: LlocoService) -> Principal | None:
    """The signed-in user of this browser session, or None (never signed in, or the session expired)."""
    if "principal" in _injected:
        return _injected["principal"]
    principal = st.session_state.get(PRINCIPAL_KEY)
    if principal is None:
        return None
    if time.time() - st.session_state.get(SIGNED_IN_AT, 0.0) > service.settings.session_hours * 3600:
        sign_out(expired=True)
        return None
    return principal


def sign_in(principal: Principal) -> None:
    st.session_state[PRINCIPAL_KEY] = principal
    st.session_state[SIGNED_IN_AT] = time.time()


def sign_out(*, expired: bool = False) -> None:
    """Forget the user and everything this browser session held for them (open chats, choices)."""
    st.session_state.clear()
    if expired:
        st.session_state["signed_out_because"] = "Your session expired: sign in again."


def get_acting(service: LlocoService) -> ActingService:
    """The service as this session's user; stops the page when nobody is signed in."""
    principal = current_principal(service)
    if principal is None:
        st.warning("Sign in first.")
        st.stop()
    return ActingService(service, principal, Accounts(service.sessions))


def require_admin_page(service: LlocoService) -> ActingService:
    """The page's service for an admin; any other user sees why the page is closed to them."""
    acting = get_acting(service)
    if not acting.principal.is_admin:
        st.error("This page is for admins.")
        st.stop()
    return acting


def oidc_configured() -> bool:
    try:
        return "auth" in st.secrets
    except Exception:  # noqa: BLE001 - no secrets file at all
        return False


def principal_for_oidc(accounts: Accounts, user: Any) -> Principal:
    """The local user an OIDC identity maps to: the one named as its e-mail address."""
    email = (getattr(user, "email", None) or (user.get("email") if hasattr(user, "get") else None) or "").strip()
    if not email:
        raise AuthenticationError("the identity provider sent no e-mail address")
    try:
        return accounts.get_user(email).principal
    except NotFoundError:
        raise AuthenticationError(f"no lloco account for {email}: an admin can create one with "
                                  f"`lloco users create {email}`") from None


def login_page(service: LlocoService) -> None:
    """The sign-in form (and the single sign-on button when OIDC is configured)."""
    st.title("Sign in to lloco")
    if (why := st.session_state.pop("signed_out_because", None)) is not None:
        st.info(why)
    accounts = Accounts(service.sessions)
    if oidc_configured():
        if getattr(st.user, "is_logged_in", False):
            try:
                sign_in(principal_for_oidc(accounts, st.user))
                st.rerun()
            except AuthenticationError as exc:
                st.error(str(exc))
        st.button("Sign in with single sign-on", on_click=st.login)
        st.divider()
    with st.form("login"):
        name = st.text_input("User name")
        password = st.text_input("Password", type="password")
        submitted = st.form_submit_button("Sign in", type="primary")
    if submitted:
        try:
            sign_in(accounts.sign_in(name.strip(), password))
        except AuthenticationError as exc:
            st.error(str(exc))
            return
        st.rerun()
    if not accounts.has_users():
        st.caption("No accounts yet: create the first admin with `lloco users create NAME --admin` "
                   "(or start the app with `make run`, which makes one and prints its password).")


def new_password_page(service: LlocoService) -> None:
    """The first sign-in with a one-time password: nothing else until the user chooses a new one."""
    principal = current_principal(service)
    if principal is None:
        return
    st.title("Choose a new password")
    st.info(f"**{principal.name}**, you signed in with a one-time password: choose your own to go on.")
    with st.form("new-password"):
        current = st.text_input("One-time password", type="password")
        new = st.text_input("New password", type="password", help=f"At least {MIN_PASSWORD} characters.")
        again = st.text_input("New password, again", type="password")
        submitted = st.form_submit_button("Change the password", type="primary")
    if not submitted:
        return
    if new != again:
        st.error("the two new passwords differ")
        return
    try:
        changed = Accounts(service.sessions).change_password(principal.name, current, new)
    except LlocoError as exc:
        st.error(str(exc))
        return
    signed_in_at = st.session_state.get(SIGNED_IN_AT, time.time())
    sign_in(changed)
    st.session_state[SIGNED_IN_AT] = signed_in_at  # the session's age is the sign-in's, not the change's
    st.session_state["password_changed"] = True
    st.rerun()


def account_sidebar(principal: Principal) -> None:
    """Who is signed in, and the sign-out button."""
    with st.sidebar:
        st.caption(f"Signed in as **{principal.name}** ({principal.role})")
        if st.button("Sign out", key="sign-out"):
            sign_out()
            st.rerun()
