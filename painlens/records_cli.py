"""``painlens db upgrade`` and ``painlens users add/remove/list/unlock/unlock-address``: the records database's schema and the
dashboard's users (``engine.records``). Where they live: ``PAINLENS_DATABASE_URL`` and ``PAINLENS_USERS``
(``engine/records/settings.py``); `unlock` and `unlock-address` hash the name or address with the dashboard's key
(``PAINLENS_ADDRESS_KEY``, else ``sign-in.key`` beside the users file: run them with the same settings)."""

from __future__ import annotations

import sys
from typing import Optional

import typer
from rich.console import Console

from engine.records.settings import RecordsSettings

console = Console()
db_app = typer.Typer(add_completion=False, no_args_is_help=True,
                     help="The assessment records database (SQLite by default, PostgreSQL by PAINLENS_DATABASE_URL).")
users_app = typer.Typer(add_completion=False, no_args_is_help=True,
                        help="The dashboard's users and roles (a file of argon2 password hashes, PAINLENS_USERS).")


@db_app.command("upgrade")
def upgrade_command() -> None:
    """Apply the schema migrations the database lacks (the first creates the schema)."""
    from engine.records.database import Database

    database = Database(RecordsSettings.from_environment().database_url)
    before, after = database.upgrade()
    database.dispose()
    if before == after:
        console.print(f"The records database ({database.where}) is up to date (revision {after}).", highlight=False)
    else:
        console.print(f"The records database ({database.where}) was upgraded from revision {before or 'none'} to "
                      f"{after}.", highlight=False)


@users_app.command("add")
def add_command(
    name: str = typer.Argument(..., help="The user's login (one word; an e-mail address for identity-provider users)."),
    role: str = typer.Option("clinician", "--role", help="clinician (upload, save, history) or researcher (experiment pages only)."),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the password from standard input (scripts) instead of asking."),
    identity_provider: bool = typer.Option(False, "--identity-provider", help="No password: the user signs in through the configured OIDC provider (st.login) under this e-mail."),
) -> None:
    """Add a user (or replace their password and role)."""
    from engine.records import users

    settings = RecordsSettings.from_environment()
    password = None
    if not identity_provider:
        password = sys.stdin.readline().rstrip("\n") if password_stdin else \
            typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    users.add(settings.users_file, name, role, password)
    console.print(f"{name} ({role}) is in {settings.users_file}.", highlight=False)


@users_app.command("remove")
def remove_command(name: str = typer.Argument(..., help="The user to remove.")) -> None:
    """Remove a user: they can no longer sign in."""
    from engine.records import users

    settings = RecordsSettings.from_environment()
    users.remove(settings.users_file, name)
    console.print(f"{name} was removed from {settings.users_file}.", highlight=False)


def _unlocking(settings, command: str, unlock):
    """``unlock(guard, actor)`` on the records database's sign-in guard (the dashboard's key, so the hashes match),
    the actor named after the command and the OS user who ran it; (its result, the database, disposed)."""
    import getpass

    from engine.records.database import Database
    from engine.records.sign_in import SignInGuard

    database = Database(settings.database_url)
    try:
        actor = f"painlens users {command} ({getpass.getuser()})"
    except (KeyError, OSError):  # no name for this uid (a container)
        actor = f"painlens users {command}"
    try:
        return unlock(SignInGuard(database, settings.users_file, address_key=settings.address_key), actor), database
    finally:
        database.dispose()


@users_app.command("unlock")
def unlock_command(name: str = typer.Argument(..., help="The name whose sign-in is paused after failed attempts.")) -> None:
    """Clear a name's failed sign-ins and its lockout: it may sign in again at once."""
    from engine.records import users

    settings = RecordsSettings.from_environment()
    cleared, database = _unlocking(settings, "unlock", lambda guard, actor: guard.unlock(name, actor))
    known = "" if name.strip() in users.read(settings.users_file) else f" ({name} is no user in {settings.users_file})"
    if cleared:
        console.print(f"{name} may sign in again: {cleared} failed attempt{'s' if cleared > 1 else ''} cleared{known}.",
                      highlight=False)
    else:
        console.print(f"{name} had no failed sign-ins counted in the records database ({database.where}){known}.",
                      highlight=False)


@users_app.command("unlock-address")
def unlock_address_command(address: str = typer.Argument(
        ..., help="The network address whose sign-in is paused (IPv4 or IPv6), or the reference its refusal named.")) -> None:
    """Clear a network address's failed sign-ins and its lockout: sign-in from it works again at once."""
    settings = RecordsSettings.from_environment()
    (reference, cleared), database = _unlocking(settings, "unlock-address",
                                                lambda guard, actor: guard.unlock_address(address, actor))
    named = f"the address with reference {reference}" if address.strip().lower() == reference else \
        f"{address.strip()} (reference {reference})"
    if cleared:
        console.print(f"Sign-in from {named} works again: {cleared} failed attempt{'s' if cleared > 1 else ''} "
                      "cleared.", highlight=False)
    else:
        console.print(f"{named[0].upper()}{named[1:]} had no failed sign-ins counted in the records database "
                      f"({database.where}).", highlight=False)


@users_app.command("list")
def list_command(as_json: Optional[bool] = typer.Option(False, "--json", help="Print name -> role as JSON.")) -> None:
    """The users and their roles (never their hashes)."""
    import json

    from engine.records import users

    settings = RecordsSettings.from_environment()
    found = {name: entry["role"] for name, entry in sorted(users.read(settings.users_file).items())}
    if as_json:
        print(json.dumps(found))
    elif not found:
        console.print(f"No users in {settings.users_file}: `painlens users add NAME --role clinician` adds one.",
                      highlight=False)
    else:
        for name, role in found.items():
            console.print(f"{name}\t{role}", highlight=False)
