"""The masker: who is masked, which columns, and DataRow rewriting in text and binary format."""

from __future__ import annotations

import json
import struct

import pytest

from wireproxy.masking import (
    Column,
    CustomDetector,
    Hasher,
    MaskConfigError,
    Masker,
    MaskingError,
    MaskSpec,
    RowPlan,
)

KEY = b"k" * 32
TEXT, VARCHAR, INT4, INT8, JSON, JSONB, DATE, TEXT_ARRAY = 25, 1043, 23, 20, 114, 3802, 1082, 1009


def datarow(values: list[bytes | None]) -> bytes:
    out = [struct.pack("!h", len(values))]
    for v in values:
        out.append(struct.pack("!i", -1) if v is None else struct.pack("!i", len(v)) + v)
    return b"".join(out)


def parse(body: bytes) -> list[bytes | None]:
    (count,) = struct.unpack_from("!h", body)
    pos, out = 2, []
    for _ in range(count):
        (ln,) = struct.unpack_from("!i", body, pos)
        pos += 4
        if ln == -1:
            out.append(None)
        else:
            out.append(body[pos:pos + ln])
            pos += ln
    assert pos == len(body)
    return out


def text_array(elems: list[bytes | None], oid: int = TEXT) -> bytes:
    out = [struct.pack("!iiI", 1, int(any(e is None for e in elems)), oid),
           struct.pack("!ii", len(elems), 1)]
    for e in elems:
        out.append(struct.pack("!i", -1) if e is None else struct.pack("!i", len(e)) + e)
    return b"".join(out)


def parse_array(data: bytes) -> tuple[int, list[bytes | None]]:
    ndim, flags, _oid = struct.unpack_from("!iiI", data)
    pos = 12
    n = 1
    for _ in range(ndim):
        dim, _lb = struct.unpack_from("!ii", data, pos)
        n *= dim
        pos += 8
    out = []
    for _ in range(n if ndim else 0):
        (ln,) = struct.unpack_from("!i", data, pos)
        pos += 4
        out.append(None if ln == -1 else data[pos:pos + ln])
        pos += max(ln, 0)
    assert pos == len(data)
    return flags, out


def user_masker(*specs: MaskSpec, user: str = "alice", **kw):
    um = Masker(list(specs), hash_key=KEY, **kw).for_user(user)
    assert um is not None
    return um


# -- who ----------------------------------------------------------------------------------------

def test_for_user_scopes_and_exemptions() -> None:
    masker = Masker([
        MaskSpec("everyone", columns=("email",)),
        MaskSpec("analysts", columns=("ssn",), users=("analyst_*",)),
        MaskSpec("not-admins", columns=("card",), exempt_users=("admin", "dba_*")),
    ])
    assert [s.id for s in masker.for_user("analyst_1").specs] == ["everyone", "analysts",
                                                                   "not-admins"]
    assert [s.id for s in masker.for_user("admin").specs] == ["everyone"]
    assert [s.id for s in masker.for_user("bob").specs] == ["everyone", "not-admins"]
    # the same applicable set shares one UserMasker (and its plan cache)
    assert masker.for_user("bob") is masker.for_user("carol")


def test_for_user_none_when_nothing_applies() -> None:
    masker = Masker([MaskSpec("m", columns=("email",), users=("app",), exempt_users=("ops",))])
    assert masker.for_user("alice") is None
    assert Masker([MaskSpec("m", columns=("email",), exempt_users=("*",))]).for_user("x") is None
    assert Masker([]).for_user("x") is None
    # role names are case-sensitive
    assert Masker([MaskSpec("m", columns=("e",), users=("App",))]).for_user("app") is None


# -- which columns ------------------------------------------------------------------------------

@pytest.mark.parametrize(("glob", "column", "masked"), [
    ("email", Column("email"), True),
    ("email", Column("email", "public.users"), True),
    ("email", Column("EMAIL", "public.users"), True),              # case-insensitive
    ("email", Column("e", "public.users", attname="email"), True),  # aliased, resolved
    ("email", Column("email_verified"), False),
    ("email*", Column("email_verified"), True),
    ("users.email", Column("email", "public.users"), True),
    ("users.email", Column("email", "users"), True),
    ("users.email", Column("email", "public.orders"), False),
    ("users.email", Column("email"), False),                       # table unknown
    ("public.users.email", Column("email", "public.users"), True),
    ("public.users.email", Column("email", "crm.users"), False),
    ("public.users.email", Column("email", "users"), False),       # schema unknown
    ("*.users.email", Column("email", "users"), True),
    ("*.pan", Column("pan"), True),                                 # table unknown but "*"
    ("*.pan", Column("pan", "billing.cards"), True),
    ("crm.*.pan", Column("pan", "crm.cards"), True),
    ("crm.*.pan", Column("pan", "billing.cards"), False),
    ("card_?", Column("card_1"), True),
    ("card_[0-9]", Column("card_x"), False),
])
def test_column_globs(glob: str, column: Column, masked: bool) -> None:
    um = user_masker(MaskSpec("m", columns=(glob,)))
    plan = um.plan([column._replace(type_oid=TEXT)])
    assert (plan is not None) is masked


def test_plan_none_without_masked_columns_or_detectors() -> None:
    um = user_masker(MaskSpec("m", columns=("email",)))
    assert um.plan([Column("id", None, INT4), Column("name", None, TEXT)]) is None
    # detectors in force: every text-like column is scanned, so there is a plan
    um = user_masker(MaskSpec("m", detectors=("email",)))
    plan = um.plan([Column("id", None, INT4), Column("name", None, TEXT)])
    assert plan is not None and plan.scanned_columns == (1,) and plan.masked_columns == ()
    # ... but not when no column is text-like
    assert um.plan([Column("id", None, INT4), Column("d", None, DATE)]) is None


def test_plan_is_cached() -> None:
    um = user_masker(MaskSpec("m", columns=("email",)))
    cols = [Column("email", None, TEXT)]
    assert um.plan(cols) is um.plan(list(cols))
    assert um.plan([("email", None, TEXT, 0)]) is um.plan(cols)    # plain tuples are accepted


# -- rewriting, text format ---------------------------------------------------------------------

def test_rewrite_text_format() -> None:
    um = user_masker(MaskSpec("m", columns=("email",), style="partial"))
    cols = [Column("id", None, INT4), Column("email", None, TEXT), Column("note", None, TEXT)]
    plan = um.plan(cols)
    assert plan is not None and plan.masked_columns == (1,)
    body = datarow([b"1", b"john@example.com", b"hello"])
    out = plan.rewrite(body)
    assert parse(out) == [b"1", b"****@example.com", b"hello"]
    assert out.endswith(datarow([b"hello"])[2:])                      # untouched bytes intact
    assert parse(plan.rewrite(datarow([b"2", None, None]))) == [b"2", None, None]


def test_rewrite_returns_the_same_object_when_nothing_changes() -> None:
    um = user_masker(MaskSpec("m", detectors=("email",)))
    plan = um.plan([Column("id", None, INT4), Column("note", None, TEXT)])
    body = datarow([b"1", b"no secrets here"])
    assert plan.rewrite(body) is body
    body = datarow([b"1", None])
    assert plan.rewrite(body) is body


def test_styles_on_a_text_column() -> None:
    cols = [Column("v", None, TEXT)]
    body = datarow([b"4111111111111111"])
    for style, want in (("redact", b"****"), ("partial", b"****1111"),
                        ("hash", Hasher(KEY).hex(b"4111111111111111").encode()),
                        ("null", None)):
        plan = user_masker(MaskSpec("m", columns=("v",), style=style)).plan(cols)
        assert parse(plan.rewrite(body)) == [want], style


def test_hash_is_the_same_across_formats_tables_and_maskers() -> None:
    a = user_masker(MaskSpec("m", columns=("email",), style="hash"))
    b = user_masker(MaskSpec("other", columns=("*.email",), style="hash"))
    body = datarow([b"john@example.com"])
    outs = {
        a.plan([Column("email", "public.users", TEXT, 0)]).rewrite(body),
        a.plan([Column("email", "public.orders", VARCHAR, 1)]).rewrite(body),
        b.plan([Column("email", "x.y", TEXT, 0)]).rewrite(body),
    }
    assert len(outs) == 1
    other_key = Masker([MaskSpec("m", columns=("email",), style="hash")], hash_key=b"other")
    assert other_key.for_user("u").plan([Column("email", None, TEXT)]).rewrite(body) not in outs


def test_non_text_column_in_text_format_is_nulled() -> None:
    um = user_masker(MaskSpec("m", columns=("salary", "born"), style="partial"))
    plan = um.plan([Column("salary", None, INT8), Column("born", None, DATE),
                    Column("x", None, INT4)])
    assert parse(plan.rewrite(datarow([b"123456", b"1990-01-01", b"7"]))) == [None, None, b"7"]
    assert plan.refuse_reason is None


def test_most_restrictive_style_wins_and_first_detector_style_wins() -> None:
    um = user_masker(MaskSpec("a", columns=("v",), style="partial", detectors=("email",)),
                     MaskSpec("b", columns=("v",), style="redact", detectors=("email",),
                              keep_last=0),
                     MaskSpec("c", columns=("*",), style="hash"))
    plan = um.plan([Column("v", None, TEXT)])
    assert parse(plan.rewrite(datarow([b"4111111111111111"]))) == [b"****"]
    assert um.mask_text("mail a@b.io") == "mail ****@b.io"          # the first rule's style


# -- binary format ------------------------------------------------------------------------------

def test_binary_text_like_masked_in_place() -> None:
    um = user_masker(MaskSpec("m", columns=("v",), style="partial"))
    for oid in (TEXT, VARCHAR, 1042, 19, 142):
        plan = um.plan([Column("v", None, oid, 1)])
        assert parse(plan.rewrite(datarow([b"4111111111111111"]))) == [b"****1111"], oid


def test_binary_non_text_is_nulled_or_refused() -> None:
    um = user_masker(MaskSpec("m", columns=("n",)))
    plan = um.plan([Column("n", None, INT4, 1), Column("x", None, INT4, 1)])
    assert plan.refuse_reason is None
    body = datarow([struct.pack("!i", 42), struct.pack("!i", 7)])
    assert parse(plan.rewrite(body)) == [None, struct.pack("!i", 7)]

    um = user_masker(MaskSpec("m", columns=("n",), binary="refuse"))
    plan = um.plan([Column("n", None, INT4, 1)])
    assert plan.refuse_reason is not None and "rule m" in plan.refuse_reason
    # text format of the same column is not refused (sent as NULL)
    assert um.plan([Column("n", None, INT4, 0)]).refuse_reason is None
    # the null style never needs refusing
    um = user_masker(MaskSpec("m", columns=("n",), binary="refuse", style="null"))
    assert um.plan([Column("n", None, INT4, 1)]).refuse_reason is None


def test_text_like_oids_for_citext_and_enums() -> None:
    citext = 16433
    um = user_masker(MaskSpec("m", columns=("email",), style="partial"))
    body = datarow([b"john@example.com"])
    assert parse(um.plan([Column("email", None, citext, 1)]).rewrite(body)) == [None]
    plan = um.plan([Column("email", None, citext, 1)], text_like_oids={citext})
    assert parse(plan.rewrite(body)) == [b"****@example.com"]
    um2 = user_masker(MaskSpec("m", columns=("email",), style="partial"),
                      text_like_oids=[citext])
    assert parse(um2.plan([Column("email", None, citext, 1)]).rewrite(body)) == [
        b"****@example.com"]


def test_json_and_jsonb_whole_value_stay_json() -> None:
    for style in ("redact", "partial", "hash"):
        um = user_masker(MaskSpec("m", columns=("doc",), style=style))
        value = b'{"email": "john@example.com"}'
        out_text = parse(um.plan([Column("doc", None, JSON, 0)]).rewrite(datarow([value])))[0]
        json.loads(out_text)
        out_jsonb = parse(um.plan([Column("doc", None, JSONB, 1)]).rewrite(
            datarow([b"\x01" + value])))[0]
        assert out_jsonb[:1] == b"\x01"
        json.loads(out_jsonb[1:])
        out_jsonb_text = parse(um.plan([Column("doc", None, JSONB, 0)]).rewrite(
            datarow([value])))[0]
        assert out_jsonb_text == out_jsonb[1:]
    um = user_masker(MaskSpec("m", columns=("doc",), style="partial"))
    plan = um.plan([Column("doc", None, JSONB, 1)])
    assert parse(plan.rewrite(datarow([b'\x01"john@example.com"']))) == [b'\x01"****@example.com"']
    # an unknown jsonb version cannot be masked in place: NULL
    assert parse(plan.rewrite(datarow([b'\x02"john@example.com"']))) == [None]


# -- content detectors --------------------------------------------------------------------------

def test_content_detectors_mask_inside_values() -> None:
    um = user_masker(MaskSpec("m", detectors=("email", "credit_card"), style="partial"))
    cols = [Column("id", None, INT4), Column("note", None, TEXT, 0),
            Column("bnote", None, VARCHAR, 1), Column("n", None, INT8)]
    plan = um.plan(cols)
    assert plan.scanned_columns == (1, 2)
    note = b"mail john@example.com, card 4111 1111 1111 1111."
    out = parse(plan.rewrite(datarow([b"1", note, note, b"4111111111111111"])))
    masked = b"mail ****@example.com, card ****1111."
    assert out == [b"1", masked, masked, b"4111111111111111"]    # int8 is not scanned


def test_content_detectors_in_json_and_jsonb() -> None:
    um = user_masker(MaskSpec("m", detectors=("email",)))
    doc = b'{"user": {"email": "john@example.com", "n": 1}}'
    for oid, fmt, value in ((JSON, 0, doc), (JSONB, 0, doc), (JSONB, 1, b"\x01" + doc)):
        out = parse(um.plan([Column("d", None, oid, fmt)]).rewrite(datarow([value])))[0]
        payload = out[1:] if fmt == 1 else out
        assert json.loads(payload) == {"user": {"email": "****", "n": 1}}


def test_content_null_style_and_unsafe_json_spans_null_the_value() -> None:
    um = user_masker(MaskSpec("m", detectors=("credit_card",), style="null"))
    plan = um.plan([Column("a", None, TEXT), Column("b", None, TEXT)])
    assert parse(plan.rewrite(datarow([b"pan 4111111111111111", b"fine"]))) == [None, b"fine"]
    custom = [CustomDetector("quoted", r'"secret[^"]*"')]
    masker = Masker([MaskSpec("m", detectors=("quoted",))], custom=custom)
    plan = masker.for_user("u").plan([Column("d", None, JSON), Column("t", None, TEXT)])
    body = datarow([b'{"a": "secret-1"}', b'say "secret-2" now'])
    assert parse(plan.rewrite(body)) == [None, b"say **** now"]


def test_binary_text_array_elements() -> None:
    um = user_masker(MaskSpec("m", detectors=("email",), style="partial"))
    plan = um.plan([Column("emails", None, TEXT_ARRAY, 1)])
    value = text_array([b"a@example.com", None, b"plain", b"b@example.org"])
    flags, elems = parse_array(parse(plan.rewrite(datarow([value])))[0])
    assert elems == [b"****@example.com", None, b"plain", b"****@example.org"]
    assert flags == 1
    # null style: the element becomes NULL and the has-null flag is set
    um = user_masker(MaskSpec("m", detectors=("email",), style="null"))
    plan = um.plan([Column("emails", None, TEXT_ARRAY, 1)])
    flags, elems = parse_array(parse(plan.rewrite(datarow([text_array([b"a@b.io", b"x"])])))[0])
    assert (flags, elems) == (1, [None, b"x"])
    # empty array, untouched array
    empty = struct.pack("!iiI", 0, 0, TEXT)
    assert plan.rewrite(datarow([empty])) == datarow([empty])
    body = datarow([text_array([b"nothing", b"here"])])
    assert plan.rewrite(body) is body


def test_text_format_array() -> None:
    um = user_masker(MaskSpec("m", detectors=("email",)))
    plan = um.plan([Column("emails", None, TEXT_ARRAY, 0)])
    out = parse(plan.rewrite(datarow([b'{a@example.com,"b@example.org x",plain}'])))
    assert out == [b'{****,"**** x",plain}']
    # a whole-column rule on an array type sends NULL
    um = user_masker(MaskSpec("m", columns=("emails",)))
    plan = um.plan([Column("emails", None, TEXT_ARRAY, 1)])
    assert parse(plan.rewrite(datarow([text_array([b"a"])]))) == [None]


def test_bad_binary_arrays_raise() -> None:
    um = user_masker(MaskSpec("m", detectors=("email",)))
    plan = um.plan([Column("a", None, TEXT_ARRAY, 1), Column("t", None, TEXT)])
    good = text_array([b"a@example.com"])
    for bad in (good[:8], good[:-1], good + b"x", struct.pack("!iiI", 7, 0, 25),
                struct.pack("!iiI", 1, 0, 25) + struct.pack("!ii", -1, 1),
                struct.pack("!iiIii", 1, 0, 25, 1, 1) + struct.pack("!i", -5)):
        with pytest.raises(MaskingError):
            plan.rewrite(datarow([bad, b"x@y.io"]))   # an "@" in the row: it is read
    # with only content detectors in force, a row in which no detector can match is not read
    # at all (as on the raw fast path), so even a malformed one goes through unchanged
    body = datarow([good[:8], b"nothing"])
    assert plan.rewrite(body) is body


# -- malformed rows -----------------------------------------------------------------------------

def test_lying_rows_raise_masking_error() -> None:
    um = user_masker(MaskSpec("m", columns=("b",)))
    plan = um.plan([Column("a", None, TEXT), Column("b", None, TEXT), Column("c", None, TEXT)])
    good = datarow([b"x", b"secret", b"z"])
    bad_rows = [
        b"",                                              # no count
        b"\x00",
        datarow([b"x", b"secret"]),                       # column count differs
        good[:2 + 4 + 1 + 2],                             # cut inside column b's length
        good[:2 + 4 + 1 + 4 + 3],                         # cut inside column b's value
        struct.pack("!h", 3) + struct.pack("!i", 1) + b"x" + struct.pack("!i", -2) + b"zz",
        struct.pack("!h", 3) + struct.pack("!i", 1000) + b"x",
    ]
    for bad in bad_rows:
        with pytest.raises(MaskingError) as exc:
            plan.rewrite(bad)
        assert isinstance(exc.value, ValueError)
    assert parse(plan.rewrite(good)) == [b"x", b"****", b"z"]


# -- free text, errors, strict ------------------------------------------------------------------

def test_mask_text() -> None:
    um = user_masker(MaskSpec("m", columns=("users.email",), detectors=("credit_card",),
                              style="partial"))
    assert um.mask_text("card 4111111111111111 ok") == "card ****1111 ok"
    assert um.mask_text("john@example.com") == "john@example.com"
    assert um.mask_text("john@example.com", Column("email", "public.users")) == "****@example.com"
    assert um.mask_text("john@example.com", "email") == "john@example.com"   # table unknown
    um = user_masker(MaskSpec("m", detectors=("email",), style="null"))
    assert um.mask_text("to a@b.io") == "to ****"
    um = user_masker(MaskSpec("m", columns=("x",)))
    assert um.mask_text("a@b.io") == "a@b.io"                       # no detector in force


def test_mask_message_unique_violation_and_failing_row() -> None:
    um = user_masker(MaskSpec("m", columns=("email",)))
    detail = "Key (email)=(john@example.com) already exists."
    assert um.mask_message(detail) == "Key (email)=(****) already exists."
    detail = "Key (tenant, email)=(7, john@example.com) already exists."
    assert um.mask_message(detail) == "Key (tenant, email)=(****) already exists."
    detail = "Key (id)=(42) already exists."
    assert um.mask_message(detail) == detail
    detail = 'Key (user_id)=(5) is not present in table "users".'
    assert um.mask_message(detail) == detail
    detail = "Failing row contains (1, john@example.com, null)."
    assert um.mask_message(detail) == "Failing row contains (****)."
    um = user_masker(MaskSpec("m", detectors=("email",)))
    detail = "Key (login)=(john@example.com) already exists."
    assert um.mask_message(detail) == "Key (login)=(****) already exists."
    assert um.mask_message("Failing row contains (1, x).") == "Failing row contains (1, x)."


def test_strict_columns() -> None:
    masker = Masker([MaskSpec("cards", columns=("card_number", "*.pan"), strict=True),
                     MaskSpec("emails", columns=("email",)),
                     MaskSpec("ops", columns=("secret",), strict=True, users=("ops",))])
    assert masker.strict_columns() == [("cards", "card_number"), ("cards", "*.pan"),
                                       ("ops", "secret")]
    assert masker.for_user("bob").strict_columns() == [("cards", "card_number"),
                                                       ("cards", "*.pan")]


# -- configuration errors -----------------------------------------------------------------------

@pytest.mark.parametrize(("specs", "custom", "key", "needle"), [
    ([MaskSpec("m", detectors=("nope",), source="r.toml:3")], [], KEY, "r.toml:3"),
    ([MaskSpec("m", style="scramble")], [], KEY, "unknown style"),
    ([MaskSpec("m", columns=("a.b.c.d",))], [], KEY, "column glob"),
    ([MaskSpec("m", columns=("a..b",))], [], KEY, "column glob"),
    ([MaskSpec("m", columns=("a",), binary="drop")], [], KEY, "binary"),
    ([MaskSpec("m", columns=("a",), style="hash")], [], b"", "key material"),
    ([MaskSpec("m", columns=("a",), keep_last=-1)], [], KEY, "keep_last"),
    ([MaskSpec("m"), MaskSpec("m")], [], KEY, "duplicate"),
    ([], [CustomDetector("email", "x")], KEY, "already taken"),
    ([], [CustomDetector("c", "(")], KEY, "does not compile"),
])
def test_config_errors(specs, custom, key, needle) -> None:
    with pytest.raises(MaskConfigError) as exc:
        Masker(specs, custom=custom, hash_key=key)
    assert needle in str(exc.value)


def test_custom_detector_in_rows() -> None:
    masker = Masker([MaskSpec("m", detectors=("order_ref",), style="hash")],
                    custom=[CustomDetector("order_ref", r"ORD-[0-9]{8}")], hash_key=KEY)
    plan = masker.for_user("u").plan([Column("note", None, TEXT)])
    out = parse(plan.rewrite(datarow([b"ref ORD-12345678."])))[0]
    assert out == b"ref " + Hasher(KEY).hex(b"ORD-12345678").encode() + b"."


def test_plan_repr_and_type() -> None:
    plan = user_masker(MaskSpec("m", columns=("a",))).plan([Column("a", None, TEXT)])
    assert isinstance(plan, RowPlan) and "masked=(0,)" in repr(plan)
