"""Who may use the dashboard, and which pages they see.

Sign-in is asked for whenever the dashboard is served on anything but a loopback address, and also on this
machine once users exist: with the identity provider's sign-in (Streamlit's ``st.login``, OIDC) when one is
configured (an ``[auth]`` section in ``.streamlit/secrets.toml``), else with a name and password from the users
file (``painlens users add``; argon2 hashes, ``engine.records.users``; failed attempts throttled per name and
per the browser's network address, ``engine.records.sign_in``). Roles: a clinician sees the upload page
and the person history; a researcher the experiment pages. On 127.0.0.1 without users nobody signs in and every
page is there, as before (``LOCAL``). Served on another address with neither users nor a provider, the
dashboard refuses to start (``check_serving``, called by ``painlens dashboard``) and, started some other way,
refuses to show any page.
"""

from __future__ import annotations

import ipaddress

import streamlit as st

from engine.errors import PainLensError
from engine.records import sign_in, users
from engine.records.settings import USERS_VARIABLE, RecordsSettings
from engine.records.users import User

LOCAL = User("local user", "local")  # 127.0.0.1 without users: no sign-in, every page
USER_KEY = "painlens-user"
CLINICIAN_PAGES = ("upload.py", "history.py")
ADD_USER = "painlens users add NAME --role clinician"


def is_loopback(address: str | None) -> bool:
    if address in ("localhost",):
        return True
    try:
        return ipaddress.ip_address(address or "").is_loopback
    except ValueError:
        return False  # empty (every interface) or a host name


def identity_provider() -> bool:
    """An OIDC provider is configured for st.login (an [auth] section in a secrets.toml Streamlit reads)."""
    try:
        return bool(st.secrets.load_if_toml_exists() and "auth" in st.secrets)
    except Exception:  # noqa: BLE001  a broken secrets file: no provider (Streamlit says why in its log)
        return False


def serving_problem(address: str | None, settings: RecordsSettings) -> str:
    """"" when the dashboard may serve ``address``, else the sentence saying why not and how to fix it."""
    if is_loopback(address) or identity_provider() or users.read(settings.users_file):
        return ""
    where = address or "every network interface"
    return (f"Served on {where}, the dashboard asks everyone to sign in, and no user is set up: add one with "
            f"`{ADD_USER}` (the users file is {settings.users_file}; {USERS_VARIABLE} names another), configure an "
            "identity provider (an auth section in .streamlit/secrets.toml), or serve 127.0.0.1 only.")


def check_serving(address: str, settings: RecordsSettings | None = None) -> None:
    problem = serving_problem(address, settings or RecordsSettings.from_environment())
    if problem:
        raise PainLensError(problem)


def served_address() -> str | None:
    """The address the server listens on; None (Streamlit's default: every interface) counts as not loopback,
    but for Streamlit's AppTest, which serves nothing (it marks its sessions with its testing key)."""
    from streamlit.runtime.state.common import TESTING_KEY

    address = st.get_option("server.address")
    if not address and TESTING_KEY in st.session_state:
        return "127.0.0.1"
    return address


def signed_in() -> User:
    """The person using this session; when sign-in is needed and nobody is signed in, the sign-in form and a stop."""
    settings = RecordsSettings.from_environment()
    address = served_address()
    problem = serving_problem(address, settings)
    if problem:
        st.error(problem, icon=":material/lock:")
        st.stop()
    if identity_provider():
        return _provider_user(settings)
    if is_loopback(address) and not users.read(settings.users_file):
        return LOCAL
    user = st.session_state.get(USER_KEY)
    if user is None:
        _password_form(settings)
        st.stop()
    _sign_out_button(user, st.session_state.pop)
    return user


def _password_form(settings: RecordsSettings) -> None:
    st.title("Sign in")
    st.caption("PainLens shows health data: sign in with the name and password your administrator gave you.")
    with st.form("sign-in"):
        name = st.text_input("Name", key="sign-in-name")
        password = st.text_input("Password", type="password", key="sign-in-password")
        if st.form_submit_button("Sign in", type="primary"):
            try:  # throttled: a few failures for one name, or more from one address, pause it (engine.records.sign_in)
                user = sign_in.guard(settings.users_file, settings.database_url, settings.address_key).sign_in(
                    name, password, client_address())
            except sign_in.SignInRefused as exc:
                st.error(str(exc), icon=":material/lock_clock:")
                return
            if user is None:
                st.error("That name and password do not match a user here.")
            else:
                st.session_state[USER_KEY] = user
                st.rerun()


def client_address() -> str | None:
    """The network address the browser connects from (``st.context.ip_address``: the TCP peer, or the address a
    reverse proxy on this machine sends in X-Forwarded-For), for the per-address sign-in limit. None when not known:
    Streamlit gives None for 127.0.0.1 and ::1 (a browser on this machine, or a proxy on it that sends no
    X-Forwarded-For), and Streamlit's AppTest gives a stand-in object that is no address."""
    try:
        address = st.context.ip_address
    except Exception:  # noqa: BLE001  no session context (a bare script run): not known
        return None
    return address if isinstance(address, str) and address.strip() else None


def _provider_user(settings: RecordsSettings) -> User:
    if not st.user.is_logged_in:
        st.title("Sign in")
        st.caption("PainLens shows health data: sign in with your organisation's account.")
        st.button("Sign in", type="primary", on_click=st.login, key="sign-in-provider")
        st.stop()
    email = str(st.user.get("email") or "")
    user = users.role_of(settings.users_file, email)
    if user is None:
        st.error(f"{email or 'Your account'} has no role here: ask an administrator to run "
                 f"`painlens users add {email or 'EMAIL'} --identity-provider --role clinician`.")
        st.button("Sign out", on_click=st.logout, key="sign-out")
        st.stop()
    st.sidebar.button(f"Sign out ({user.name})", on_click=st.logout, key="sign-out")
    st.session_state[USER_KEY] = user  # what the pages ask (``current``)
    return user


def _sign_out_button(user: User, forget) -> None:
    st.sidebar.button(f"Sign out ({user.name}, {user.role})", key="sign-out", on_click=lambda: forget(USER_KEY, None))


def allowed(file: str, user: User) -> bool:
    """Whether ``user`` sees the page in ``file``: a clinician the upload page and the history, a researcher
    the others, this machine's user without sign-in all."""
    if user.role == "local":
        return True
    return (file in CLINICIAN_PAGES) == (user.role == "clinician")


def current() -> User:
    """The user app.py let in (pages run after it)."""
    return st.session_state.get(USER_KEY) or LOCAL
