from datetime import UTC, datetime

from django.core import mail

from pim_portal.mail import send_templated_mail
from tests.factories import make_user


def test_mail_shows_dates_in_the_recipients_time_zone(db, tmp_path, settings):
    settings.TEMPLATES = [
        {
            **settings.TEMPLATES[0],
            "DIRS": [tmp_path, *settings.TEMPLATES[0]["DIRS"]],
        }
    ]
    (tmp_path / "t_subject.txt").write_text("Ends")
    (tmp_path / "t.txt").write_text("{% load pim %}{{ moment|when }}")
    (tmp_path / "t.html").write_text("{% load pim %}<p>{{ moment|when }}</p>")
    make_user("tokyo", email="tokyo@example.com", time_zone="Asia/Tokyo")
    make_user("berlin", email="berlin@example.com", time_zone="Europe/Berlin")
    moment = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)

    sent = send_templated_mail(
        template="t",
        recipients=["tokyo@example.com", "Berlin@Example.com", ""],
        context={"moment": moment},
    )

    assert sent == 2
    bodies = {message.to[0]: message.body for message in mail.outbox}
    assert bodies["tokyo@example.com"] == "2026-11-29 21:00 JST"
    assert bodies["berlin@example.com"] == "2026-11-29 13:00 CET"


def test_mail_finds_the_time_zone_of_a_user_whose_address_has_capitals(db, tmp_path, settings):
    settings.TEMPLATES = [
        {
            **settings.TEMPLATES[0],
            "DIRS": [tmp_path, *settings.TEMPLATES[0]["DIRS"]],
        }
    ]
    (tmp_path / "t_subject.txt").write_text("Ends")
    (tmp_path / "t.txt").write_text("{% load pim %}{{ moment|when }}")
    (tmp_path / "t.html").write_text("{% load pim %}<p>{{ moment|when }}</p>")
    make_user("tokyo", email="Kenji.Sato@example.com", time_zone="Asia/Tokyo")
    moment = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)

    send_templated_mail(
        template="t", recipients=["Kenji.Sato@example.com"], context={"moment": moment}
    )

    assert mail.outbox[0].body == "2026-11-29 21:00 JST"
