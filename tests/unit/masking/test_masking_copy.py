"""COPY TO STDOUT rows in text and csv format."""

from __future__ import annotations

import pytest

from wireproxy.masking import Column, Masker, MaskingError, MaskSpec
from wireproxy.masking import copyline

COLS = [Column("id", "public.users"), Column("email", "public.users"),
        Column("note", "public.users")]


def plan(*specs: MaskSpec, cols=COLS):
    p = Masker(list(specs), hash_key=b"k").for_user("alice").plan(cols)
    assert p is not None
    return p


def test_text_row_masked_and_other_fields_byte_identical() -> None:
    p = plan(MaskSpec("m", columns=("email",), style="partial"))
    assert p.rewrite_copy_line(b"1\tjohn@example.com\tn\\tote\n") == (
        b"1\t****@example.com\tn\\tote\n")
    assert p.rewrite_copy_line(b"1\t\\N\tx\n") == b"1\t\\N\tx\n"        # NULL stays NULL
    line = b"2\t\t\\\\odd\\x41\n"                                       # empty, escapes
    assert p.rewrite_copy_line(line) == b"2\t****\t\\\\odd\\x41\n"


def test_text_row_without_change_is_the_same_object() -> None:
    p = plan(MaskSpec("m", detectors=("email",)))
    line = b"1\tno\tsecrets\n"
    assert p.rewrite_copy_line(line) is line


def test_text_escapes_decoded_before_detection_and_reencoded() -> None:
    p = plan(MaskSpec("m", detectors=("email",), style="partial"))
    # an escaped tab and newline inside the note; the email is after them
    line = b"1\tx\tline1\\nline2\\tjohn@example.com\\\\\n"
    assert p.rewrite_copy_line(line) == b"1\tx\tline1\\nline2\\t****@example.com\\\\\n"
    # octal / hex escapes hide nothing: \\100 is "@"
    line = b"1\tx\tjohn\\100example.com\n"
    assert p.rewrite_copy_line(line) == b"1\tx\t****@example.com\n"


def test_text_null_style_writes_null_marker() -> None:
    p = plan(MaskSpec("m", columns=("email",), style="null"))
    assert p.rewrite_copy_line(b"1\ta@b.io\tx\n") == b"1\t\\N\tx\n"
    assert p.rewrite_copy_line(b"1\ta@b.io\tx", null=b"NULL") == b"1\tNULL\tx"


def test_text_custom_delimiter_escaped_in_data() -> None:
    p = plan(MaskSpec("m", columns=("note",), style="partial", keep_last=3))
    line = b"1|a\\|b|abcdef\\|g\n"
    assert p.rewrite_copy_line(line, delimiter=b"|") == b"1|a\\|b|****f\\|g\n"


def test_masked_value_containing_specials_is_escaped() -> None:
    p = plan(MaskSpec("m", columns=("note",), style="partial", keep_last=3))
    # the kept end of "abc<TAB>x\\yz" is "\\yz": escaped again on the way out
    out = p.rewrite_copy_line(b"1\tx\tabc\\tx\\\\yz\n")
    assert out == b"1\tx\t****\\\\yz\n"


def test_csv_rows() -> None:
    p = plan(MaskSpec("m", columns=("email",), style="partial"))
    assert p.rewrite_copy_line(b'1,john@example.com,"a, ""quoted"" note"\n', "csv") == (
        b'1,****@example.com,"a, ""quoted"" note"\n')
    assert p.rewrite_copy_line(b'1,"john@example.com",x\n', "csv") == b"1,****@example.com,x\n"
    assert p.rewrite_copy_line(b"1,,x\n", "csv") == b"1,,x\n"                  # NULL
    assert p.rewrite_copy_line(b'1,"",x\n', "csv") == b"1,****,x\n"          # empty string
    assert p.rewrite_copy_line(b'1,a@b.io,"multi\nline"\r\n', "csv") == (
        b'1,****@b.io,"multi\nline"\r\n')


def test_csv_content_detection_in_quoted_field() -> None:
    p = plan(MaskSpec("m", detectors=("email",), style="partial"))
    line = b'1,x,"mail ""john@example.com"", ok"\n'
    assert p.rewrite_copy_line(line, "csv") == b'1,x,"mail ""****@example.com"", ok"\n'


def test_csv_null_style_and_options() -> None:
    p = plan(MaskSpec("m", columns=("email",), style="null"))
    assert p.rewrite_copy_line(b"1,a@b.io,x\n", "csv") == b"1,,x\n"
    assert p.rewrite_copy_line(b"1;a@b.io;x\n", "csv", delimiter=b";", null=b"\\N") == (
        b"1;\\N;x\n")
    p = plan(MaskSpec("m", columns=("note",), style="partial", keep_last=2))
    # escape character other than the quote
    out = p.rewrite_copy_line(b'1,x,"ab\\"cd\\"e"\n', "csv", escape=b"\\")
    assert out == b'1,x,"****\\"e"\n'


def test_bad_copy_rows() -> None:
    p = plan(MaskSpec("m", columns=("email",)))
    with pytest.raises(MaskingError):
        p.rewrite_copy_line(b"1\tonly two\n")
    with pytest.raises(MaskingError):
        p.rewrite_copy_line(b'1,"open,x\n', "csv")
    with pytest.raises(ValueError):
        p.rewrite_copy_line(b"1\t2\t3\n", "binary")


def test_copyline_helpers_round_trip() -> None:
    for value in (b"", b"plain", b"tab\there", b"nl\nx\rcr", b"back\\slash", b"\x08\x0c\x0b",
                  b"d|elim"):
        esc = copyline.escape_text(value, b"|")
        assert b"\n" not in esc and b"\t" not in esc
        assert copyline.split_text(esc + b"|" + esc, b"|") == [esc, esc]
        assert copyline.unescape_text(esc) == value
        quoted = copyline.quote_csv(value, b",", b'"', b'"', b"")
        fields = copyline.split_csv(quoted + b"," + quoted, b",", b'"', b'"')
        assert [copyline.unquote_csv(f, b'"', b'"') for f in fields] == [value, value]
    assert copyline.split_line(b"a\r\n") == (b"a", b"\r\n")
    assert copyline.split_line(b"a") == (b"a", b"")
