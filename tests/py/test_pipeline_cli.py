"""`quarry check --pipeline FILE` on broken pipeline files: exit 2, and one message that names the
file, the line, the key, and what would be valid."""
import re

import pytest

import warehouse as whr

GOOD = (whr.REPO_ROOT / whr.PIPELINE).read_text(encoding="utf-8")


def line_of(text, needle, nth=1):
    """1-based line of the nth line containing `needle`."""
    hits = [i for i, line in enumerate(text.splitlines(), start=1) if needle in line]
    assert len(hits) >= nth, f"{needle!r} not in the pipeline text"
    return hits[nth - 1]


def in_entry(text, needle, field):
    """`entry[N].field` for the [[entry]] table holding the line with `needle`."""
    line = line_of(text, needle)
    n = sum(1 for l in text.splitlines()[:line] if l.strip() == "[[entry]]")
    return f"entry[{n - 1}].{field}"


def edit(old, new, count=1):
    assert old in GOOD, old
    return GOOD.replace(old, new, count)


# name → (pipeline text, the line the message must name (a needle of the edited text), the key,
#         words of what would be valid)
CASES = {
    "malformed_toml": (edit('key = "summary"', 'key = "summary'), 'key = "summary',
                       lambda t: in_entry(t, 'key = "summary', "key"), ["not valid TOML", "`key = value`"]),
    "invalid_regex": (edit(r"trailer = '(?i)^similar\s+posts$'", r"trailer = '(?i)^similar[\s+posts$'"),
                      "trailer = ", "page.trailer", ["invalid regular expression", "unclosed character class"]),
    "unknown_key": (edit("[output]\n", "[output]\nzstd_levle = 4\n"), "zstd_levle", "output.zstd_levle",
                    ["unknown field", "batch_rows", "row_group_rows", "zstd_level"]),
    "unknown_key_in_entry": (edit('key = "topic"', 'key = "topic"\ncolumm = "topic"'), "columm",
                             lambda t: in_entry(t, "columm", "columm"),
                             ["unknown field", "column", "kind", "value"]),
    "missing_required_key": (edit('key = "difficulty"\nkind = "scalar"\n', 'key = "difficulty"\n'),
                             # the line of the table that lacks it: the `[[entry]]` header above
                             ('key = "difficulty"', -1), lambda t: in_entry(t, 'key = "difficulty"', "kind"),
                             ["missing field `kind`"]),
    "missing_top_level_key": (edit('name = "alphanode"\n', ""), None, "name", ["missing field `name`"]),
    "unknown_value_type": (edit('value = "int"\ncolumn = "view_count"', 'value = "integer"\ncolumn = "view_count"'),
                           'value = "integer"', lambda t: in_entry(t, 'value = "integer"', "value"),
                           ["unknown variant `integer`", "text", "int", "score", "date", "flag", "hash"]),
    "unknown_kind": (edit('kind = "objects"', 'kind = "object"'), 'kind = "object"',
                     lambda t: in_entry(t, 'kind = "object"', "kind"),
                     ["unknown variant `object`", "scalar", "list", "pairs", "objects"]),
    "wrong_value_type_for_column": (edit('value = "int"\ncolumn = "view_count"',
                                         'value = "date"\ncolumn = "view_count"'),
                                    'column = "view_count"',
                                    lambda t: in_entry(t, 'column = "view_count"', "value").replace(
                                        "].value", '] (key "view count").value'),
                                    ["cannot fill column", "int64"]),
    "unknown_column": (edit('column = "ai_brief"', 'column = "ai_brif"'), 'column = "ai_brif"',
                       lambda t: in_entry(t, 'column = "ai_brif"', "column").replace(
                           "].column", '] (key "ai brief").column'),
                       ["no column \"ai_brif\"", "expected one of", "ai_brief"]),
    # a key of another entry kind: named at its own line, with the keys the kind takes
    "value_on_a_list": (edit('key = "stack"\nkind = "list"\n', 'key = "stack"\nkind = "list"\nvalue = "int"\n'),
                        ('key = "stack"', 2),
                        lambda t: in_entry(t, 'key = "stack"', "value").replace("].value", '] (key "stack").value'),
                        ["a list entry takes no value", "it takes key, kind, column"]),
    "fields_on_a_scalar": (edit('column = "topic"\n', 'column = "topic"\nfields = []\n'), "fields = []",
                           lambda t: in_entry(t, "fields = []", "fields").replace("].fields", '] (key "topic").fields'),
                           ["a scalar entry takes no fields", "value", "column"]),
    "objects_without_column": (edit('kind = "objects"\ncolumn = "entities"\n', 'kind = "objects"\n'),
                               'key = "entities"',
                               lambda t: in_entry(t, 'key = "entities"', "column").replace(
                                   "].column", '] (key "entities").column'),
                               ["missing", "list<struct> column"]),
    "zero_batch_rows": (edit("batch_rows = 4096", "batch_rows = 0"), "batch_rows = 0", "output.batch_rows",
                        ["invalid value: integer `0`", "a number of rows ≥ 1"]),
    "zstd_level_out_of_range": (edit("zstd_level = 1\n", "zstd_level = 23\n"), "zstd_level = 23",
                                "output.zstd_level", ["integer `23`", "zstd level from 1 to 22"]),
    "error_in_an_inline_field": (edit('{ name = "seed", value = "int",', '{ name = "seed", value = "integer",'),
                                 'value = "integer"',
                                 lambda t: in_entry(t, 'value = "integer"', "fields[4].value"),
                                 ["unknown variant `integer`", "text", "int"]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_broken_pipeline_is_named_precisely(quarry_binary, tmp_path, name):
    text, needle, key, valid = CASES[name]
    path = tmp_path / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    rc, out, err = whr.run_quarry(["check", "--pipeline", path])
    assert rc == 2, f"exit {rc}\n{out}{err}"
    lines = err.strip().splitlines()
    assert len(lines) == 1, f"one line expected:\n{err}"
    msg = lines[0]
    m = re.match(r"quarry: error: (.+?):(\d+): (.+?): (.+)$", msg)
    assert m, f"not 'file:line: key: message': {msg}"
    file, line, got_key, message = m.group(1), int(m.group(2)), m.group(3), m.group(4)
    assert file == str(path), msg
    if needle is not None:
        needle, delta = needle if isinstance(needle, tuple) else (needle, 0)
        want = line_of(text, needle) + delta
        assert line == want, f"line {line}, expected {want}: {msg}"
    if callable(key):
        key = key(text)
    assert got_key == key, msg
    for word in valid:
        assert word in message, f"{word!r} missing from: {msg}"
    # The same file makes `import` fail the same way, before touching the output.
    rc, _, err2 = whr.run_quarry(["import", "--pipeline", path, "--output", tmp_path / "wh",
                                  "tests/fixtures/seed-page.txt"])
    assert rc == 2 and msg in err2, err2
    assert not (tmp_path / "wh").exists()


def test_good_pipeline_checks(quarry_binary):
    rc, out, err = whr.run_quarry(["check", "--pipeline", whr.PIPELINE])
    assert rc == 0 and "ok" in out, err


def test_missing_pipeline_file(quarry_binary, tmp_path):
    rc, _, err = whr.run_quarry(["check", "--pipeline", tmp_path / "nope.toml"])
    assert rc == 2 and str(tmp_path / "nope.toml") in err and "No such file" in err, err
