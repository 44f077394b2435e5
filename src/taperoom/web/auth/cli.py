"""``taperoom <app> user add|list|remove|password``: the accounts of one app.

The password is asked twice without echo, or read from the first line of
standard input with ``--password-stdin`` (for scripts and ``docker compose run``);
it never appears in the process list, the shell history or a log.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from taperoom.web.auth.store import AuthStore

#: Opens the app's user store; returns it and a function that closes it.
StoreOpener = Callable[[], tuple[AuthStore, Callable[[], None]]]

NameArg = Annotated[str, typer.Argument(help="User name (1 to 64 characters).")]
StdinOpt = Annotated[bool, typer.Option(
    "--password-stdin", help="Read the password from the first line of standard input.")]


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))


def build_user_cli(app: str, opener: StoreOpener) -> typer.Typer:
    """The ``user`` command group of one app.

    Parameters
    ----------
    app : str
        ``library`` or ``recorder`` (shown in help and messages).
    opener : callable
        Opens the app's user store (from the app's settings, migrated).
    """
    cli = typer.Typer(help=f"Accounts that may sign in to the {app}.", no_args_is_help=True)
    console = Console(stderr=True)

    @cli.command("add")
    def add(name: NameArg, password_stdin: StdinOpt = False) -> None:
        """Create a user (the password is asked for, or read with --password-stdin)."""
        password = _password(password_stdin)
        store, close = opener()
        try:
            first = not store.has_users()
            store.add_user(name, password)
        finally:
            close()
        console.print(f"user {name!r} added")
        if first:
            console.print(f"the {app} now requires sign-in: restart a running server "
                          "for it to take effect")

    @cli.command("password")
    def password(name: NameArg, password_stdin: StdinOpt = False) -> None:
        """Set a user's password (their sessions end)."""
        new = _password(password_stdin)
        store, close = opener()
        try:
            ended = store.set_password(name, new)
        finally:
            close()
        console.print(f"password of {name!r} changed; {ended} session(s) ended")

    @cli.command("remove")
    def remove(name: NameArg) -> None:
        """Delete a user and end their sessions."""
        store, close = opener()
        try:
            store.remove_user(name)
        finally:
            close()
        console.print(f"user {name!r} removed")

    @cli.command("list")
    def list_users() -> None:
        """List the users and their live sessions."""
        store, close = opener()
        try:
            rows = store.list_users()
        finally:
            close()
        table = Table("name", "created (UTC)", "sessions")
        for row in rows:
            table.add_row(row["name"], row["created_at"].isoformat(" ", "seconds"),
                          str(row["sessions"]))
        Console().print(table)

    return cli
