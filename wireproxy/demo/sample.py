"""The demo's sample shop: customers with personal data, their orders and payments.

Made up, deterministic (a seeded generator), and realistic where the masks look: card numbers
are Luhn-valid with real issuer prefixes, e-mails and phone numbers are well formed, national
ids have the US SSN shape. Loaded over a direct connection with COPY, so it takes a moment.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass

CUSTOMERS = 2_000
ORDERS = 6_000

SCHEMA = """
CREATE TABLE customers (
    id          integer PRIMARY KEY,
    full_name   text NOT NULL,
    email       text NOT NULL,
    phone       text NOT NULL,
    national_id text NOT NULL,
    card_number text NOT NULL,
    country     text NOT NULL,
    created_at  date NOT NULL
);
CREATE TABLE orders (
    id          integer PRIMARY KEY,
    customer_id integer NOT NULL REFERENCES customers,
    placed_at   timestamptz NOT NULL,
    status      text NOT NULL,
    total       numeric(10, 2) NOT NULL
);
CREATE TABLE payments (
    id          integer PRIMARY KEY,
    order_id    integer NOT NULL REFERENCES orders,
    card_number text NOT NULL,
    amount      numeric(10, 2) NOT NULL,
    paid_at     timestamptz NOT NULL
);
"""

_FIRST = ("Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Margaret", "Dennis",
          "Radia", "John", "Shafi", "Leslie", "Tim", "Sophie", "Linus", "Anita", "Guido", "Hedy")
_LAST = ("Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson", "Hamilton",
         "Ritchie", "Perlman", "McCarthy", "Goldwasser", "Lamport", "Berners-Lee", "Wilson", "Torvalds",
         "Borg", "Rossum", "Lamarr")
_DOMAINS = ("example.com", "mail.example.org", "shop.example.net")
_COUNTRIES = ("US", "GB", "DE", "FR", "NL", "CA", "SE", "ES")
_STATUSES = ("paid", "paid", "paid", "shipped", "shipped", "refunded", "pending")
_EPOCH = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)


@dataclass(frozen=True)
class Counts:
    customers: int
    orders: int
    payments: int


def luhn_complete(digits: str) -> str:
    """`digits` plus the check digit that makes the whole number pass the Luhn test."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 0:          # these double once the check digit is appended
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return digits + str((10 - total % 10) % 10)


def _card(rng: random.Random) -> str:
    prefix = rng.choice(("4", "51", "52", "53", "54", "55"))
    return luhn_complete(prefix + "".join(rng.choice("0123456789") for _ in range(15 - len(prefix))))


def _ssn(rng: random.Random) -> str:
    return f"{rng.randint(1, 665):03d}-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}"


def customers(rng: random.Random) -> list[tuple]:
    rows = []
    for i in range(1, CUSTOMERS + 1):
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        email = f"{first}.{last}{i}@{rng.choice(_DOMAINS)}".lower().replace("-", "")
        phone = f"+1 415 555 {rng.randint(0, 9999):04d}"
        created = (_EPOCH + dt.timedelta(days=rng.randint(0, 600))).date()
        rows.append((i, f"{first} {last}", email, phone, _ssn(rng), _card(rng), rng.choice(_COUNTRIES), created))
    return rows


def orders_and_payments(rng: random.Random, cards: dict[int, str]) -> tuple[list[tuple], list[tuple]]:
    orders, payments = [], []
    for i in range(1, ORDERS + 1):
        customer = rng.randint(1, CUSTOMERS)
        placed = _EPOCH + dt.timedelta(minutes=rng.randint(0, 600 * 24 * 60))
        status = rng.choice(_STATUSES)
        total = round(rng.uniform(5, 900), 2)
        orders.append((i, customer, placed, status, total))
        if status != "pending":
            payments.append((len(payments) + 1, i, cards[customer], total,
                             placed + dt.timedelta(minutes=rng.randint(1, 90))))
    return orders, payments


def load(conn, seed: int = 8) -> Counts:
    """Create and fill the tables over `conn` (a psycopg connection straight to the server)."""
    rng = random.Random(seed)
    people = customers(rng)
    orders, payments = orders_and_payments(rng, {row[0]: row[5] for row in people})
    with conn.transaction():
        conn.execute(SCHEMA)
        with conn.cursor() as cur:
            for table, rows in (("customers", people), ("orders", orders), ("payments", payments)):
                with cur.copy(f"COPY {table} FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
        conn.execute("ANALYZE")
    return Counts(len(people), len(orders), len(payments))
