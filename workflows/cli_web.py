"""CLI commands of the web side: ``serve`` and ``users create``.

Why separate from ``workflows.cli``: the web engineer owns these commands; ``workflows.cli``
registers them at start-up. The server is started by import string
(``web.app:create_app``, factory=True) so that ``workflows`` never imports ``web``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

# The roles a demonstration shows, in the order they are printed.
DEMO_ROLES: tuple[str, ...] = (
    "national_admin",
    "coordinator",
    "officer_emploi",
    "officer_sante",
    "officer_logement",
    "cip",
    "esp",
    "partner_contact",
)
DEMO_TERRITORY = "paris"  # preferred for the territorial accounts, when it has them


@dataclass(frozen=True)
class DemoLogin:
    role: str  # a key of DEMO_ROLES
    label: str  # French: the role and where ("Chargé·e de partenariats santé (Paris)")
    email: str


def demo_logins(session: Session) -> list[DemoLogin]:
    """One active account of every role, read from the database (accounts made by ``seed``):
    the national admin, a territory's coordination and its chargé·es of each domain, a CIP
    (CVG chantier) and an ESP (a PHC-only chantier's account), and the contact of the partner
    with the most orientations — so each login has something to show."""
    from sqlalchemy import func, select

    from engine.access.permissions import PARTNER_VISIBLE_STATES
    from engine.store import models as m

    U = m.StaffUser
    active = U.active.is_(True)
    names = dict(session.execute(select(m.Territory.id, m.Territory.name)).all())
    codes = dict(session.execute(select(m.Territory.id, m.Territory.code)).all())

    def first(*where: Any) -> m.StaffUser | None:
        return session.scalars(select(U).where(active, *where).order_by(U.id).limit(1)).first()

    # The territory: the preferred one when it has a coordination and all three domains,
    # else the first that has them.
    complete = [
        tid
        for tid in sorted(names, key=lambda t: (codes[t] != DEMO_TERRITORY, names[t]))
        if first(U.role == "coordinator", U.territory_id == tid)
        and all(
            first(U.role == "officer", U.territory_id == tid, U.domain == d)
            for d in ("emploi", "sante", "logement")
        )
    ]
    territory = complete[0] if complete else None
    out: list[DemoLogin] = []

    def add(role: str, label: str, user: m.StaffUser | None) -> None:
        if user is not None:
            out.append(DemoLogin(role, label, user.email))

    add("national_admin", "Administration nationale", first(U.role == "national_admin"))
    where = f" ({names[territory]})" if territory else ""
    in_territory = (U.territory_id == territory,) if territory else ()
    add(
        "coordinator",
        f"Coordination{where}",
        first(U.role == "coordinator", U.national_queue.is_(False), *in_territory)
        or first(U.role == "coordinator"),
    )
    for domain, words in (("emploi", "emploi"), ("sante", "santé"), ("logement", "logement")):
        add(
            f"officer_{domain}",
            f"Chargé·e de partenariats {words}{where}",
            first(U.role == "officer", U.domain == domain, *in_territory)
            or first(U.role == "officer", U.domain == domain),
        )
    for role, programme_filter, word in (
        ("cip", m.Chantier.carries_cvg.is_(True), "CIP"),
        ("esp", (m.Chantier.carries_phc.is_(True)) & (m.Chantier.carries_cvg.is_(False)), "ESP"),
    ):
        row = session.execute(
            select(U, m.Chantier.name)
            .join(m.Chantier, m.Chantier.id == U.chantier_id)
            .where(active, U.role == "cip", programme_filter)
            .order_by((m.Chantier.territory_id != territory) if territory else m.Chantier.id, U.id)
            .limit(1)
        ).first()
        if row is not None:
            programme = "CVG" if role == "cip" else "PHC"
            add(role, f"{word} (chantier {programme} « {row[1]} »)", row[0])
    busiest = session.execute(
        select(U, m.Partner.name, func.count(m.Referral.id).label("n"))
        .join(m.Partner, m.Partner.id == U.partner_id)
        .join(m.Offer, m.Offer.partner_id == m.Partner.id)
        .join(m.Referral, m.Referral.offer_id == m.Offer.id)
        .where(active, U.role == "partner_contact", m.Referral.state.in_(PARTNER_VISIBLE_STATES))
        .group_by(U.id, m.Partner.name)
        .order_by(func.count(m.Referral.id).desc(), U.id)
        .limit(1)
    ).first()
    if busiest is not None:
        n = int(busiest[2])
        word = "orientation" if n < 2 else "orientations"
        add("partner_contact", f"Contact partenaire ({busiest[1]}, {n} {word})", busiest[0])
    return out


def demo_login_lines(logins: Sequence[DemoLogin]) -> list[str]:
    """French lines listing demo accounts; the password is the seed's demo password."""
    from engine.network.seed import DEMO_PASSWORD

    lines = [f"Comptes de démonstration (mot de passe : {DEMO_PASSWORD}) :"]
    lines += [f"  - {login.label} : {login.email}" for login in logins]
    missing = [r for r in DEMO_ROLES if r not in {login.role for login in logins}]
    if missing:
        lines.append(
            "  (rôles sans compte dans la base : " + ", ".join(missing) + " — lancez "
            "« aiguillage seed » puis « aiguillage route »)"
        )
    return lines


def _demo_logins_from_database() -> list[DemoLogin]:
    from engine.store.db import Database, unit_of_work
    from engine.store.settings import load_settings

    try:
        with unit_of_work(Database(load_settings().database_url)) as session:
            return demo_logins(session)
    except Exception:  # the base may not exist yet: the list is only a convenience
        return []


def demo_base_url(environ: Mapping[str, str], host: str, port: int) -> str | None:
    """The base URL of the links in mails for a demonstration served on ``port``, when
    AIGUILLAGE_BASE_URL is not set (None when it is: an explicit setting wins)."""
    if environ.get("AIGUILLAGE_BASE_URL"):
        return None
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    if ":" in shown:  # an IPv6 address
        shown = f"[{shown}]"
    return f"http://{shown}:{port}"


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

        if demo:
            # Mails written while the demo runs link to the port it is served on.
            base_url = demo_base_url(os.environ, host, port)
            if base_url is not None:
                os.environ["AIGUILLAGE_BASE_URL"] = base_url
        if print_logins:
            for line in demo_login_lines(_demo_logins_from_database()):
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
