"""The demo's sample shop: its personal data is what the masks are built to find."""

from __future__ import annotations

import random

from wireproxy.demo import sample
from wireproxy.masking import find
from wireproxy.masking.validators import luhn_ok


def only(name: str, text: str) -> list[str]:
    return [text[s:e] for s, e, _ in find(text, (name,))]


def test_luhn_complete_matches_known_card_numbers():
    assert sample.luhn_complete("411111111111111") == "4111111111111111"
    assert sample.luhn_complete("555555555555444") == "5555555555554444"
    assert sample.luhn_complete("7992739871") == "79927398713"


def test_every_customer_value_is_found_by_its_detector():
    people = sample.customers(random.Random(8))
    assert len(people) == sample.CUSTOMERS
    for _id, _name, email, phone, national_id, card, _country, _created in people:
        assert luhn_ok(card) and len(card) == 16
        assert only("credit_card", card) == [card]
        assert only("email", email) == [email]
        assert only("phone", phone) == [phone]
        assert only("us_ssn", national_id) == [national_id]
    assert len({p[2] for p in people}) == len(people)          # e-mails are unique


def test_the_data_is_the_same_every_run():
    first = sample.customers(random.Random(8))
    assert first == sample.customers(random.Random(8))
    orders, payments = sample.orders_and_payments(random.Random(8), {p[0]: p[5] for p in first})
    assert len(orders) == sample.ORDERS
    assert 0 < len(payments) < len(orders)                        # pending orders are not paid yet
    by_customer = {p[0]: p[5] for p in first}
    order_customer = {o[0]: o[1] for o in orders}
    assert all(card == by_customer[order_customer[order_id]] for _id, order_id, card, _amount, _at in payments)
