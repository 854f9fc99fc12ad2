"""CLI commands of the web side: ``serve`` and ``users create``.

Why separate from ``workflows.cli``: the web engineer owns these commands; ``workflows.cli``
registers them at start-up. The server is started by import string
(``web.app:create_app``, factory=True) so that ``workflows`` never imports ``web``.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

# One demo login per role, printed by ``serve --print-logins`` (accounts made by ``seed``).
DEMO_LOGINS: tuple[tuple[str, str], ...] = (
    ("Administration nationale", "admin@convergence-france.example.org"),
    ("Coordination (Paris)", "coordination.paris.1@convergence-france.example.org"),
    ("Coordination nationale PHC", "equipe-phc@convergence-france.example.org"),
    (
        "Chargé·e de partenariats logement (Paris)",
        "logement.paris.1@convergence-france.example.org",
    ),
    ("Chargé·e de partenariats emploi (Paris)", "emploi.paris.1@convergence-france.example.org"),
    ("CIP (ACI Paris 1)", "cip.paris-aci-01@convergence-france.example.org"),
)


def demo_login_lines(partner_email: str | None = None) -> list[str]:
    """French lines listing demo accounts; the password is the seed's demo password."""
    from engine.network.seed import DEMO_PASSWORD

    lines = [f"Comptes de démonstration (mot de passe : {DEMO_PASSWORD}) :"]
    logins = list(DEMO_LOGINS)
    if partner_email:
        logins.append(("Contact partenaire", partner_email))
    lines += [f"  - {role} : {email}" for role, email in logins]
    return lines


def _first_partner_contact() -> str | None:
    from sqlalchemy import select

    from engine.store import models as m
    from engine.store.db import Database, unit_of_work
    from engine.store.settings import load_settings

    try:
        with unit_of_work(Database(load_settings().database_url)) as session:
            return session.scalar(
                select(m.StaffUser.email)
                .where(m.StaffUser.role == "partner_contact", m.StaffUser.active)
                .order_by(m.StaffUser.id)
                .limit(1)
            )
    except Exception:  # the base may not exist yet: the list is only a convenience
        return None


def register(app: typer.Typer, users_app: typer.Typer) -> None:
    """Add ``serve`` to the main app and ``create`` to the ``users`` group."""

    @app.command()
    def serve(
        host: Annotated[str, typer.Option(help="Adresse d'écoute.")] = "127.0.0.1",
        port: Annotated[int, typer.Option(help="Port d'écoute.")] = 8000,
        print_logins: Annotated[
            bool,
            typer.Option("--print-logins", help="Affiche un compte de démonstration par rôle."),
        ] = False,
        demo: Annotated[
            bool,
            typer.Option("--demo", help="Démonstration : accepte la clé secrète par défaut."),
        ] = False,
    ) -> None:
        """Démarre l'application web (pages et API)."""
        import uvicorn

        from engine.store.settings import load_settings, secret_problem

        problem = secret_problem(load_settings())
        if problem and not demo:
            typer.echo(f"Erreur : {problem}", err=True)
            raise typer.Exit(2)

        if print_logins:
            for line in demo_login_lines(_first_partner_contact()):
                typer.echo(line)
        typer.echo(f"Aiguillage écoute sur http://{host}:{port}/")
        uvicorn.run(
            "web.app:create_app",
            factory=True,
            host=host,
            port=port,
            log_level="info",
            access_log=False,
        )

    @users_app.command("create")
    def users_create(
        email: Annotated[str, typer.Option(help="Adresse électronique (identifiant).")],
        name: Annotated[str, typer.Option(help="Nom affiché.")],
        role: Annotated[
            str,
            typer.Option(help="national_admin, coordinator, officer, cip ou partner_contact."),
        ],
        territory: Annotated[str | None, typer.Option(help="Code du territoire.")] = None,
        domain: Annotated[str | None, typer.Option(help="emploi, sante ou logement.")] = None,
        chantier: Annotated[str | None, typer.Option(help="Code du chantier (CIP / ESP).")] = None,
        partner: Annotated[str | None, typer.Option(help="Code du partenaire.")] = None,
        password_stdin: Annotated[
            bool,
            typer.Option("--password-stdin", help="Lit le mot de passe sur l'entrée standard."),
        ] = False,
    ) -> None:
        """Crée un compte (mot de passe haché avec argon2)."""
        from engine.access.auth import AccountError, create_user
        from engine.domain.clock import Clock
        from engine.store.db import Database
        from engine.store.settings import load_settings

        if password_stdin:
            password = sys.stdin.readline().rstrip("\n")
        else:
            password = typer.prompt("Mot de passe", hide_input=True)
            again = typer.prompt("Confirmez le mot de passe", hide_input=True)
            if password != again:
                typer.echo("Erreur : les deux mots de passe diffèrent.", err=True)
                raise typer.Exit(2)
        try:
            user_id = create_user(
                Database(load_settings().database_url),
                email=email,
                display_name=name,
                role=role,
                password=password,
                territory_code=territory,
                domain=domain,
                chantier_code=chantier,
                partner_code=partner,
                clock=Clock.system(),
            )
        except AccountError as exc:
            typer.echo(f"Erreur : {exc}", err=True)
            raise typer.Exit(2) from None
        typer.echo(f"Compte créé (n° {user_id}) : {email.strip().lower()}")
