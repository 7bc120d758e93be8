"""The donate form and the Stripe Checkout it opens."""

from __future__ import annotations

import pytest

from donations import stripe_api
from donations.models import Gift
from donations.money import fee_cents
from tests.donations.factories import AppealFactory
from tests.newsroom.factories import ArticleFactory

pytestmark = pytest.mark.django_db

VALID = {
    "frequency": "one_time",
    "amount": "5000",
    "email": "leila@mail.example",
    "name": "Leila Mansour",
}


def give(client, **overrides):
    data = {**VALID, **overrides}
    return client.post("/donate/", data, REMOTE_ADDR=overrides.pop("ip", "203.0.113.7"))


def test_donate_page_is_cacheable_and_sets_no_cookie(client):
    response = client.get("/donate/?frequency=monthly")
    assert response.status_code == 200
    assert not response.cookies
    assert "csrfmiddlewaretoken" not in response.content.decode()
    assert "public" in response["Cache-Control"]
    assert "Give monthly" in response.content.decode()


def test_donate_page_names_the_fee_before_paying(client):
    page = client.get("/donate/?frequency=one_time").content.decode()
    assert "Cover the processing fee (2.9% + $0.30)" in page
    # The default one-time presets start at $25: 25.00 + fee = (25.00 + 0.30) / 0.971
    assert f"On $25 that adds ${fee_cents(2500) / 100:.2f}" in page


def test_fee_covers_stripes_cut_exactly():
    for amount in (500, 2500, 10000, 123457):
        total = amount + fee_cents(amount)
        stripe_keeps = round(total * 0.029) + 30
        assert 0 <= total - stripe_keeps - amount <= 1  # never short, at most a cent over


def test_one_time_gift_opens_exactly_one_checkout_session(client, fake_stripe):
    response = give(client, cover_fee="on", anonymous="on")

    assert response.status_code == 303
    assert response["Location"] == "https://checkout.stripe.test/c/pay/cs_test_fake_1"
    [call] = fake_stripe.named("checkout_session_create")
    gift = Gift.objects.get()
    params = call["params"]
    assert call["idempotency_key"] == f"gift-{gift.pk}-checkout"
    assert params["mode"] == "payment"
    assert params["submit_type"] == "donate"
    assert params["customer_email"] == "leila@mail.example"
    assert params["metadata"]["gift_id"] == str(gift.pk)
    assert params["payment_intent_data"]["metadata"]["gift_id"] == str(gift.pk)
    gift_line, fee_line = params["line_items"]
    assert gift_line["price_data"]["unit_amount"] == 5000
    assert gift_line["price_data"]["currency"] == "usd"
    assert "recurring" not in gift_line["price_data"]
    assert fee_line["price_data"]["unit_amount"] == fee_cents(5000) == 181
    assert (
        params["success_url"]
        == "https://news.example/donate/thanks/?session_id={CHECKOUT_SESSION_ID}"
    )
    assert gift.status == Gift.Status.PENDING
    assert gift.amount_cents == 5181 and gift.fee_cents == 181
    assert gift.anonymous is True
    assert gift.stripe_checkout_session_id == "cs_test_fake_1"


def test_monthly_gift_is_a_subscription_with_an_inline_recurring_price(client, fake_stripe):
    response = give(client, frequency="monthly", amount="other", custom_amount="12.50")

    assert response.status_code == 303
    [call] = fake_stripe.named("checkout_session_create")
    params = call["params"]
    gift = Gift.objects.get()
    assert params["mode"] == "subscription"
    assert "submit_type" not in params
    assert params["subscription_data"]["metadata"]["gift_id"] == str(gift.pk)
    [line] = params["line_items"]
    assert line["price_data"]["unit_amount"] == 1250
    assert line["price_data"]["recurring"] == {"interval": "month"}
    assert gift.frequency == "monthly" and gift.amount_cents == 1250


def test_annual_gift_recurs_every_year(client, fake_stripe):
    give(client, frequency="annual", amount="other", custom_amount="100")
    [call] = fake_stripe.named("checkout_session_create")
    assert call["params"]["line_items"][0]["price_data"]["recurring"] == {"interval": "year"}


def test_gift_records_appeal_placement_article_and_utm(client, fake_stripe):
    appeal = AppealFactory()
    article = ArticleFactory()
    give(
        client,
        appeal=str(appeal.pk),
        placement="in_article",
        article=str(article.pk),
        utm_source="newsletter",
        utm_campaign="winter",
    )
    gift = Gift.objects.get()
    assert gift.appeal == appeal
    assert gift.placement == "in_article"
    assert gift.article == article
    assert gift.utm == {"utm_source": "newsletter", "utm_campaign": "winter"}
    assert fake_stripe.named("checkout_session_create")[0]["params"]["metadata"][
        "appeal_id"
    ] == str(appeal.pk)


def test_dedication_is_kept_on_the_gift(client, fake_stripe):
    give(
        client, dedication="memory", honoree_name="Samir Haddad", honoree_email="nadia@mail.example"
    )
    gift = Gift.objects.get()
    assert (gift.dedication, gift.honoree_name, gift.honoree_email) == (
        "memory",
        "Samir Haddad",
        "nadia@mail.example",
    )


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"email": ""}, "Please enter your email address, so we can send your receipt."),
        ({"email": "not-an-address"}, "Please enter a valid email address"),
        ({"amount": ""}, "Please choose an amount."),
        (
            {"amount": "other", "custom_amount": ""},
            "Please enter the amount you would like to give.",
        ),
        (
            {"amount": "other", "custom_amount": "4.99"},
            "The smallest gift we can take online is $5.",
        ),
        (
            {"amount": "other", "custom_amount": "25000.01"},
            "For a gift above $25,000, please write to us",
        ),
        ({"amount": "other", "custom_amount": "ten"}, "Please enter an amount in numbers"),
        (
            {"amount": "other", "custom_amount": "10.555"},
            "Please enter an amount in dollars and cents",
        ),
        (
            {"dedication": "honor", "honoree_name": ""},
            "Please tell us who this gift honours or remembers.",
        ),
        ({"frequency": "weekly"}, "Please choose one-time, monthly or annual."),
    ],
)
def test_invalid_input_explains_and_creates_nothing(client, fake_stripe, overrides, message):
    response = give(client, **overrides)

    assert response.status_code == 400
    assert message in response.content.decode()
    assert fake_stripe.calls == []
    assert not Gift.objects.exists()


def test_invalid_input_keeps_what_the_donor_typed(client, fake_stripe):
    page = give(client, email="nope", name="Leila Mansour").content.decode()
    assert 'value="Leila Mansour"' in page


def test_honeypot_refuses_quietly_and_creates_nothing(client, fake_stripe):
    response = give(client, website="http://spam.example")
    assert response.status_code == 400
    assert fake_stripe.calls == []
    assert not Gift.objects.exists()


def test_flood_from_one_ip_gets_429(client, fake_stripe, rate_window):
    codes = [give(client, email=f"card{n}@mail.example").status_code for n in range(12)]
    assert codes[:10] == [303] * 10
    assert codes[10:] == [429, 429]
    response = give(client, email="other@mail.example")
    assert response.status_code == 429
    assert "Too many attempts" in response.content.decode()
    assert len(fake_stripe.named("checkout_session_create")) == 10


def test_donor_on_another_ip_is_not_locked_out_by_a_flood(client, fake_stripe):
    for n in range(11):
        give(client, email=f"card{n}@mail.example", ip="198.51.100.1")
    assert give(client, ip="198.51.100.2").status_code == 303


def give_via_proxy(client, *, forwarded_for: str, proxy: str = "10.0.0.2", n: int = 0):
    data = {**VALID, "email": f"card{n}@mail.example"}
    return client.post("/donate/", data, REMOTE_ADDR=proxy, HTTP_X_FORWARDED_FOR=forwarded_for)


def test_behind_two_proxies_each_client_has_its_own_limit(
    client, fake_stripe, settings, rate_window
):
    settings.CLIENT_IP_PROXY_HOPS = 2
    codes = [
        give_via_proxy(client, forwarded_for="198.51.100.1, 10.0.0.1", n=n).status_code
        for n in range(11)
    ]
    assert codes == [303] * 10 + [429]

    # Another reader behind the same proxies is not held back by the first one's flood.
    other = give_via_proxy(client, forwarded_for="198.51.100.2, 10.0.0.1", n=99)
    assert other.status_code == 303


def test_without_proxies_a_rotating_forwarded_for_does_not_escape_the_limit(
    client, fake_stripe, settings, rate_window
):
    settings.CLIENT_IP_PROXY_HOPS = 0
    # TLS ends at a proxy, but no proxy is trusted to append: every entry is the client's claim.
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    codes = [
        give_via_proxy(
            client, forwarded_for=f"198.51.100.{n}", proxy="203.0.113.7", n=n
        ).status_code
        for n in range(12)
    ]
    assert codes == [303] * 10 + [429, 429]


def test_one_email_is_limited_across_ips(client, fake_stripe, rate_window):
    codes = [give(client, ip=f"198.51.100.{n}").status_code for n in range(7)]
    assert codes == [303] * 5 + [429, 429]


def test_captcha_hook_refuses_when_it_says_no(client, fake_stripe, settings):
    settings.CHECKOUT_CAPTCHA_CHECK = "tests.donations.test_checkout.captcha_says_no"
    response = give(client)
    assert response.status_code == 400
    assert "Please complete the check that you are a person" in response.content.decode()
    assert fake_stripe.calls == []


def captcha_says_no(request) -> bool:
    return False


def test_stripe_unreachable_charges_nothing_and_says_so(client, fake_stripe):
    fake_stripe.fail_with = stripe_api.StripeError("connection refused")
    response = give(client)
    assert response.status_code == 503
    assert "Nothing was charged" in response.content.decode()
    assert Gift.objects.get().status == Gift.Status.FAILED


def test_thanks_page_waits_for_the_webhook_and_never_marks_paid(client, fake_stripe):
    give(client)
    gift = Gift.objects.get()
    response = client.get(f"/donate/thanks/?session_id={gift.stripe_checkout_session_id}")
    page = response.content.decode()
    assert "We are confirming your gift" in page
    assert 'http-equiv="refresh"' in page
    assert "Miriam Haddad" in page and "Founder and President" in page
    assert 'href="/newsletters/"' in page
    gift.refresh_from_db()
    assert gift.status == Gift.Status.PENDING
    assert "reader_state" in response.cookies


def test_thanks_page_confirms_once_stripe_has(client, fake_stripe):
    give(client)
    Gift.objects.update(status=Gift.Status.PAID, paid_at="2026-03-01T10:00:00Z")
    gift = Gift.objects.get()
    page = client.get(
        f"/donate/thanks/?session_id={gift.stripe_checkout_session_id}"
    ).content.decode()
    assert "is confirmed" in page and "$50" in page
    assert 'http-equiv="refresh"' not in page


@pytest.mark.parametrize("url", ["/donate/", "/donate/cancelled/", "/donate/manage/"])
def test_public_donation_pages_set_no_cookie_and_carry_no_csrf_token(client, url):
    response = client.get(url)
    assert response.status_code == 200
    assert not response.cookies
    assert "csrfmiddlewaretoken" not in response.content.decode()


def test_cancel_page_says_nothing_was_charged(client):
    page = client.get("/donate/cancelled/").content.decode()
    assert "nothing was charged" in page and 'href="/donate/"' in page


# --- while Redis is down -------------------------------------------------------------


def test_checkout_answers_503_with_retry_after_while_its_rate_limit_cannot_count(
    client, fake_stripe, redis_cache_proxy
):
    redis_cache_proxy.mode = "refuse"

    response = give(client)

    assert response.status_code == 503
    assert int(response["Retry-After"]) > 0
    assert "Nothing was charged" in response.content.decode()
    assert "no-store" in response["Cache-Control"]
    assert not fake_stripe.named("checkout_session_create")
    assert not Gift.objects.exists()


def test_the_donate_page_itself_answers_while_redis_is_down(client, redis_cache_proxy):
    redis_cache_proxy.mode = "hang"

    response = client.get("/donate/?frequency=monthly")

    assert response.status_code == 200
    assert "Give monthly" in response.content.decode()
