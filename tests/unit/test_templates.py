"""Templates: every kind renders in French, with only its declared, safe context.

The sensitive-data tests plant health and housing details everywhere the engine
could leak them — extra keys and every declared field — and check that the
context validation refuses each attempt, then that no rendered email contains
any planted detail.
"""

from __future__ import annotations

from datetime import date, datetime
from email import message_from_bytes, policy
from email.utils import parsedate_to_datetime
from typing import Any

import jinja2
import pytest
from jinja2 import meta

from notifications.fields import (
    ContextError,
    Field,
    ListOf,
    find_sensitive,
)
from notifications.kinds import CRITICAL_KINDS, KINDS, PARTNER_FACING_KINDS, validate_context
from notifications.render import (
    RenderedMessage,
    build_email,
    date_fr,
    environment,
    message_id_for,
    render,
)
from notifications.samples import SAMPLE_BASE_URL, sample_context
from tests.support.mail_guard import SensitiveContentError, assert_no_sensitive

BASE = SAMPLE_BASE_URL
ALL_KINDS = sorted(KINDS)
PLANTED = [
    "VIH",
    "addiction à l'alcool",
    "à la rue depuis 3 ans",
    "Hépatite C",
    "suivi psychiatrique",
    "sans domicile fixe",
    "sortie d'hôpital",
    "Enceinte",
]
INJECTED = {"kind_label", "reason", "critical", "groups", "partner_facing", "partner_groups"}


def rendered(kind: str, **overrides: Any) -> RenderedMessage:
    return render(kind, {**sample_context(kind), **overrides}, base_url=BASE)


# -- catalogue ---------------------------------------------------------------


def test_catalogue_lists_the_expected_kinds_and_critical_ones() -> None:
    assert set(KINDS) == {
        "new_referrals",
        "triage_due_soon",
        "triage_overdue",
        "triage_escalation",
        "partner_orientation",
        "partner_reminder",
        "partner_answered",
        "partner_digest",
        "allocation_ready",
        "slot_validated",
        "outcome_due",
        "followup_due",
        "retention_notice",
        "daily_digest",
    }
    assert {
        "triage_overdue",
        "triage_escalation",
        "partner_orientation",
        "partner_reminder",
        "partner_digest",
    } == CRITICAL_KINDS
    labels = [spec.label for spec in KINDS.values()]
    assert len(set(labels)) == len(labels)
    assert all(label[0].isupper() for label in labels)


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_templates_use_exactly_the_declared_variables(kind: str) -> None:
    env = environment()
    used: set[str] = set()
    for part in ("subject.txt", "body.txt", "body.html", "_layout.html", "_footer.txt"):
        name = part if part.startswith("_") else f"{kind}/{part}"
        source = env.loader.get_source(env, name)[0]  # type: ignore[union-attr]
        used |= meta.find_undeclared_variables(env.parse(source))
    used -= {"href", "caption"}  # set by {% with %} around the button include
    declared = KINDS[kind].variables
    assert used - INJECTED <= declared, f"undeclared: {used - INJECTED - declared}"
    assert declared <= used, f"declared but never shown: {declared - used}"


# -- rendering -----------------------------------------------------------------


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_every_kind_renders_in_french_with_footer(kind: str) -> None:
    ctx = sample_context(kind)
    msg = rendered(kind)
    assert msg.subject and "\n" not in msg.subject and len(msg.subject) < 120
    for body in (msg.text, msg.html):
        assert "Bonjour Camille," in body
        assert "Vous recevez ce message car" in body
        assert f"Gérer vos préférences : {ctx['preferences_url']}" in body or (
            f'Gérer vos préférences : <a href="{ctx["preferences_url"]}">' in body
        )
    assert '<html lang="fr">' in msg.html
    assert "<" not in msg.text
    critical_note = "ne peut pas être désactivé"
    assert (critical_note in msg.text) == (kind in CRITICAL_KINDS)


def test_new_referrals_counts_and_links() -> None:
    many = rendered("new_referrals", count=3)
    assert many.subject == "3 nouvelles orientations dans votre file"
    assert f"{BASE}/file" in many.text and f'href="{BASE}/file"' in many.html
    one = rendered("new_referrals", count=1)
    assert one.subject == "1 nouvelle orientation dans votre file"


def test_partner_orientation_shows_action_link_and_expiry() -> None:
    msg = rendered("partner_orientation", expires_on=date(2025, 4, 1))
    ctx = sample_context("partner_orientation")
    assert ctx["action_url"] in msg.text
    assert f'href="{ctx["action_url"]}"' in msg.html
    assert "valable jusqu'au 1er avril 2025" in msg.text
    assert "aucun compte ni mot de passe" in msg.text and "aucun compte ni mot de passe" in msg.html


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_partner_mails_never_ask_to_log_in(kind: str) -> None:
    """Partners answer through a signed link without an account: no partner mail asks them
    to create an account or to log in; the staff's mails still send them to the app."""
    msg = rendered(kind)
    partner_facing = kind in PARTNER_FACING_KINDS
    for body in (msg.text, msg.html):
        assert ("connectez-vous" in body) != partner_facing, kind
        assert "créer de compte" not in body
        assert ("sans compte" in body or "ni compte" in body) == partner_facing, kind


def test_partner_digest_lists_each_orientation_with_its_link_and_no_detail() -> None:
    ctx = sample_context("partner_digest")
    msg = rendered("partner_digest")
    assert (
        msg.subject == "2 orientations en attente de votre réponse (récapitulatif du 14 mars 2025)"
    )
    assert "Association Relais Emploi 59 (2)" in msg.text
    for item in ctx["items"]:
        assert item["reference"] in msg.text and item["action_url"] in msg.text
        assert f'href="{item["action_url"]}"' in msg.html
    assert "SAL-7F3K2Q (Hauts-de-France) — Nouvelle orientation à examiner" in msg.text
    assert "Relance : réponse attendue, lien valable jusqu'au 20 mars 2025" in msg.text
    with pytest.raises(ContextError):  # a line cannot carry a need or a note
        rendered("partner_digest", items=[{**ctx["items"][0], "thematique": "sante--addictions"}])


@pytest.mark.parametrize(("answer", "verb", "step"), [("acceptée", "accepté", "mettez la personne"),
                                                       ("refusée", "refusé", "motif du refus")])  # fmt: skip
def test_partner_answered_says_the_answer_and_the_next_step(answer: str, verb: str, step: str):
    msg = rendered("partner_answered", answer=answer)
    assert msg.subject == f"Association Relais Emploi 59 a {verb} l'orientation SAL-7F3K2Q"
    assert f"orientation {answer}" in msg.text and "Prochaine étape" in msg.text
    assert step in msg.text and step in msg.html
    with pytest.raises(ContextError):
        rendered("partner_answered", answer="peut-être")


def test_retention_notice_says_when_and_how_many_are_kept() -> None:
    msg = rendered("retention_notice", count=4, held=2, due_on=date(2025, 6, 30))
    assert msg.subject == "4 dossiers de votre chantier seront anonymisés le 30 juin 2025"
    assert "Les dossiers de 4 salarié·es de votre chantier seront anonymisés le 30 juin 2025" in (
        msg.text
    )
    assert "enregistrez un suivi avant cette date" in msg.text
    assert "2 dossiers sont conservés car une orientation est en attente" in msg.text
    one = rendered("retention_notice", count=1, held=0)
    assert "Le dossier d'un·e salarié·e de votre chantier sera anonymisé" in one.text
    assert "conservé" not in one.text and "conservé" not in one.html
    with pytest.raises(ContextError):
        rendered("retention_notice", count=0)


def test_followup_mentions_months() -> None:
    assert "Suivi à 12 mois" in rendered("followup_due", months=12).subject
    with pytest.raises(ContextError):
        rendered("followup_due", months=9)


def test_daily_digest_groups_items_by_kind_in_catalogue_order() -> None:
    text = rendered("daily_digest").text
    first = text.index("Nouvelles orientations dans ma file (2)")
    second = text.index("Qualification bientôt due (1)")
    assert first < second
    assert text.index("SAL-7F3K2Q") < second and text.index("SAL-B4N6RT") < second
    assert text.index("SAL-Q2W8ZP") > second


def test_html_is_escaped_but_text_is_not() -> None:
    msg = rendered("allocation_ready", territory="Emploi & Compétences d'Oc")
    assert "Emploi &amp; Compétences d&#39;Oc" in msg.html
    assert "Emploi & Compétences d'Oc" in msg.text
    assert "Emploi & Compétences d'Oc" in msg.subject


def test_missing_template_variable_fails_loudly() -> None:
    with pytest.raises(jinja2.UndefinedError):
        environment().get_template("triage_due_soon/body.txt").render({})


def test_date_fr() -> None:
    assert date_fr(date(2025, 3, 1)) == "1er mars 2025"
    assert date_fr(date(2025, 8, 15)) == "15 août 2025"


# -- context validation ------------------------------------------------------------


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_missing_and_unexpected_variables_are_refused(kind: str) -> None:
    ctx = sample_context(kind)
    for key in ctx:
        partial = {k: v for k, v in ctx.items() if k != key}
        with pytest.raises(ContextError, match="missing"):
            validate_context(kind, partial)
    with pytest.raises(ContextError, match="unexpected"):
        validate_context(kind, {**ctx, "note": "RAS"})


@pytest.mark.parametrize(
    ("kind", "key", "value"),
    [
        ("triage_due_soon", "reference", "SAL-7f3k2q"),
        ("triage_due_soon", "reference", "Dossier 812"),
        ("triage_due_soon", "due_on", "2025-03-14"),
        ("triage_due_soon", "due_on", datetime(2025, 3, 14, 9)),
        ("triage_due_soon", "url", "https://ailleurs.example/orientations/812"),
        ("triage_due_soon", "url", "javascript:alert(1)"),
        ("new_referrals", "count", 0),
        ("new_referrals", "count", True),
        ("new_referrals", "count", "3"),
        ("new_referrals", "recipient_name", "camille"),
        ("new_referrals", "recipient_name", "Camille\nBcc: x@y.z"),
        ("allocation_ready", "territory", ""),
        ("allocation_ready", "territory", "Occitanie<script>" + "x" * 100),
        ("daily_digest", "items", []),
        ("daily_digest", "items", [{"kind": "new_referrals"}]),
    ],
)
def test_values_outside_their_field_type_are_refused(kind: str, key: str, value: Any) -> None:
    with pytest.raises(ContextError):
        validate_context(kind, {**sample_context(kind), key: value}, base_url=BASE)


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(ContextError, match="unknown"):
        render("birthday", {})


# -- sensitive data ------------------------------------------------------------


def _string_attacks(valid: str, detail: str) -> list[str]:
    """Ways a careless caller might put ``detail`` into a string field."""
    return [
        detail,
        detail.upper(),
        f"{valid} {detail}",
        f"{valid} ({detail})",
        f"{valid}/{detail}",
        f"{valid}?note={detail}",
        f"{valid}/{detail.replace(' ', '-')}",
        " ".join(w.capitalize() for w in detail.split()),
    ]


def _attacks(kind: str, detail: str) -> list[tuple[str, dict[str, Any]]]:
    """Every context a leaking engine could build for ``kind`` with ``detail``."""
    ctx = sample_context(kind)
    attempts: list[tuple[str, dict[str, Any]]] = [
        ("extra key", {**ctx, "frein": detail}),
        ("extra key", {**ctx, "situation_logement": detail}),
    ]
    fields: dict[str, Field] = dict(KINDS[kind].fields)
    for key, field in fields.items():
        value = ctx[key]
        if isinstance(field, ListOf):
            for sub_key, _ in field.fields:
                item = value[0]
                item_values = (
                    _string_attacks(item[sub_key], detail)
                    if isinstance(item[sub_key], str)
                    else [detail]
                )
                for bad in item_values:
                    attempts.append(
                        (f"{key}[0].{sub_key}", {**ctx, key: [{**item, sub_key: bad}, *value[1:]]})
                    )
                attempts.append((f"{key}[0] extra", {**ctx, key: [{**item, "note": detail}]}))
        elif isinstance(value, str):
            for bad in _string_attacks(value, detail):
                attempts.append((key, {**ctx, key: bad}))
        else:
            attempts.append((key, {**ctx, key: detail}))
    return attempts


@pytest.mark.parametrize("kind", ALL_KINDS)
@pytest.mark.parametrize("detail", PLANTED)
def test_planted_details_cannot_enter_any_field(kind: str, detail: str) -> None:
    attempts = _attacks(kind, detail)
    assert len(attempts) > len(KINDS[kind].fields)
    for where, ctx in attempts:
        try:
            msg = render(kind, ctx, base_url=BASE)
        except ContextError:
            continue
        # Reaching here means validation let it through: the email must still be clean.
        assert_no_sensitive(msg, PLANTED)
        pytest.fail(f"{kind}: {where} accepted {detail!r}")


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_rendered_samples_contain_no_planted_detail(kind: str) -> None:
    assert_no_sensitive(rendered(kind), PLANTED)


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_template_text_itself_carries_no_sensitive_vocabulary(kind: str) -> None:
    msg = rendered(kind)
    for part in (msg.subject, msg.text, msg.html):
        assert find_sensitive(part) == []


@pytest.mark.parametrize(
    "leaky",
    [
        RenderedMessage("Suivi", "Personne à la rue depuis 3 ans.", "<p>ok</p>"),
        RenderedMessage("Suivi", "ok", "<p>&agrave; la rue depuis 3 ans</p>"),
        RenderedMessage("Suivi", "A LA RUE DEPUIS 3 ANS", "<p>ok</p>"),
        RenderedMessage("Dépistage VIH", "ok", "<p>ok</p>"),
        RenderedMessage("Suivi", "addiction  à\nl’alcool", "<p>ok</p>"),
    ],
)
def test_guard_catches_details_in_any_part_and_spelling(leaky: RenderedMessage) -> None:
    with pytest.raises(SensitiveContentError):
        assert_no_sensitive(leaky, PLANTED)


def test_sensitive_lexicon_matches_words_not_substrings() -> None:
    assert find_sensitive("Sortie d'HÔPITAL prévue") == ["hopital"]
    assert find_sensitive("Résidence Les Tilleuls") == []
    assert find_sensitive(f"{BASE}/p/eyJyIjo4MTJ9.chrsX2.x9Q2hT") == []


# -- email building --------------------------------------------------------------


def test_message_id_is_stable_per_key_and_hides_it() -> None:
    a = message_id_for("referral:812:partner_orientation", "aiguillage.test")
    assert a == message_id_for("referral:812:partner_orientation", "aiguillage.test")
    assert a != message_id_for("referral:813:partner_orientation", "aiguillage.test")
    assert a.startswith("<") and a.endswith("@aiguillage.test>")
    assert "812" not in a
    with pytest.raises(ValueError):
        message_id_for("", "aiguillage.test")


def test_build_email_is_utf8_multipart_alternative_text_then_html() -> None:
    msg_id = message_id_for("k-1", "aiguillage.test")
    email = build_email(
        rendered("outcome_due"),
        to="Camille <camille@chantier.test>",
        from_="Aiguillage <ne-pas-repondre@aiguillage.test>",
        message_id=msg_id,
        headers={"List-Unsubscribe": f"<{BASE}/preferences>", "Auto-Submitted": "auto-replied"},
    )
    raw = email.as_bytes()
    parsed = message_from_bytes(raw, policy=policy.default)
    assert parsed.get_content_type() == "multipart/alternative"
    parts = list(parsed.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    assert all(p.get_content_charset() == "utf-8" for p in parts)
    assert parsed["Subject"] == "Résultat à saisir pour l'orientation SAL-7F3K2Q"
    assert b"=?utf-8?" in raw.split(b"\n\n", 1)[0]  # non-ASCII subject is encoded
    assert parsed["Message-ID"] == msg_id
    assert parsed["List-Unsubscribe"] == f"<{BASE}/preferences>"
    assert parsed.get_all("Auto-Submitted") == ["auto-replied"]
    assert parsedate_to_datetime(parsed["Date"]).tzinfo is not None
    assert "Résultat" in parts[0].get_content() or "résultat" in parts[0].get_content()


def test_build_email_refuses_a_malformed_message_id() -> None:
    with pytest.raises(ValueError):
        build_email(rendered("outcome_due"), to="a@b.test", from_="c@d.test", message_id="abc")


@pytest.mark.parametrize("name", ["Camille", "Jean-Luc", "Mme Durand", "Anne de Vries", "Éloïse"])
def test_real_display_names_are_accepted(name: str) -> None:
    assert f"Bonjour {name}," in rendered("new_referrals", recipient_name=name).text


def test_signed_tokens_in_links_are_not_read_as_words() -> None:
    """A random token may spell "vih" between two dashes; only readable parts are screened."""
    from notifications.kinds import validate_context

    ctx = dict(sample_context("partner_orientation"))
    token = "eyJyIjozMywicCI6OX0.awfFzw.qid49SSd3sm1zk-vih-xe2nPp0SIYoLc"
    ctx["action_url"] = f"{BASE}/partenaire/reponse/{token}"
    assert validate_context("partner_orientation", ctx, base_url=BASE)["action_url"].endswith(token)
    ctx["action_url"] = f"{BASE}/partenaire/vih/{token}"
    with pytest.raises(ContextError):
        validate_context("partner_orientation", ctx, base_url=BASE)


def test_every_digestible_kind_has_its_one_digest_label():
    from notifications.kinds import DIGEST_ITEM_LABELS, DIGESTIBLE_KINDS

    assert set(DIGEST_ITEM_LABELS) == set(DIGESTIBLE_KINDS)
