"""Identifier validators, scan and keyed pseudonymisation, on generated numbers only."""

from __future__ import annotations

import hashlib
import hmac
import random

import pandas as pd
import pytest
from idsp import privacy
from idsp.errors import KeyStoreError, UserError
from idsp.keys import KeyStore
from idsp.privacy import pseudonyms
from testkit.identifiers import make_bsn, make_iban


@pytest.fixture
def rng():
    return random.Random(20261128)


def test_generated_bsns_follow_the_elfproef(rng):
    good = [make_bsn(rng) for _ in range(500)]
    bad = [make_bsn(rng, valid=False) for _ in range(500)]
    assert all(privacy.is_bsn(v) for v in good)
    assert not any(privacy.is_bsn(v) for v in bad)
    series = pd.Series(good + bad + [None])
    result = privacy.is_bsn(series)
    assert result.tolist() == [True] * 500 + [False] * 501
    assert result.index.equals(series.index)


def test_bsn_zero_padding_separators_and_zeros(rng):
    bsn = make_bsn(rng)
    while not bsn.startswith("0"):
        bsn = make_bsn(rng)
    assert privacy.is_bsn(bsn[1:])  # Excel dropped the leading zero
    assert privacy.is_bsn(int(bsn))
    assert privacy.is_bsn(f"{bsn[:4]}.{bsn[4:6]}.{bsn[6:]}")
    assert privacy.is_bsn(f"{bsn[:3]} {bsn[3:6]} {bsn[6:]}")
    assert not privacy.is_bsn("000000000")
    assert not privacy.is_bsn("0")
    assert not privacy.is_bsn("1234567890")  # ten digits
    assert not privacy.is_bsn("12-03-2024")  # a date is not a BSN, even if its digits pass
    assert privacy.is_rsin is privacy.is_bsn


def test_iban_mod97(rng):
    for _ in range(200):
        iban = make_iban(rng)
        assert privacy.is_iban(iban), iban
        spaced = " ".join(iban[i : i + 4] for i in range(0, len(iban), 4))
        assert privacy.is_iban(spaced.lower())
        broken = iban[:-1] + str((int(iban[-1]) + 1) % 10)
        assert not privacy.is_iban(broken)
    assert privacy.is_iban("DE89370400440532013000")  # the standard's own example
    assert not privacy.is_iban("NL91ABNA041716430")  # too short for NL


@pytest.mark.parametrize(
    ("check", "yes", "no"),
    [
        (privacy.is_kvk, ["12345678", "1234 5678"], ["1234567", "123456789", "00000000", "12-34-5678"]),
        (privacy.is_postcode, ["1234 AB", "1234ab", "9999ZZ"], ["0123 AB", "1234 SA", "12345", "1234 A"]),
        (privacy.is_phone_nl, ["0612345678", "06-12345678", "+31 6 1234 5678", "020 123 4567", "0800 1234"],
         ["061234567", "+32612345678", "12345678"]),
        (privacy.is_email, ["a.b@voorbeeld.nl", "x+y@sub.domein.org"], ["a@b", "@x.nl", "a b@c.nl"]),
    ],
)
def test_shapes(check, yes, no):
    assert [check(v) for v in yes] == [True] * len(yes)
    assert [check(v) for v in no] == [False] * len(no)
    assert check(pd.Series(yes + no)).tolist() == [True] * len(yes) + [False] * len(no)


def test_mask_hides_the_identifier(rng):
    bsn = make_bsn(rng)
    assert privacy.mask(bsn, "bsn") == "*******" + bsn[-2:]
    assert privacy.mask("jan.jansen@voorbeeld.nl", "email") == "j***@v***"


def test_scan_finds_columns_and_embedded_text(rng):
    bsns = [make_bsn(rng) for _ in range(8)] + ["onbekend", None]
    df = pd.DataFrame(
        {
            "burger": bsns,
            "bedrag": [1.5] * 10,
            "kvk_nummer": [f"{rng.randrange(10**7, 10**8)}" for _ in range(10)],
            "volgnummer": list(range(10)),
            "opmerking": ["belde met 06 12345678 over de zaak"] + ["geen bijzonderheden"] * 9,
        }
    )
    found = {(f.column, f.kind): f for f in privacy.scan(df)}
    assert found[("burger", "bsn")].count == 8
    assert found[("burger", "bsn")].share == pytest.approx(8 / 9, abs=1e-4)
    assert all(bsn not in str(found[("burger", "bsn")].examples) for bsn in bsns[:8])
    assert ("kvk_nummer", "kvk") in found
    assert found[("opmerking", "phone")].embedded and found[("opmerking", "phone")].count == 1
    assert not any(col in ("bedrag", "volgnummer") for col, _ in found)


def test_scan_ignores_rare_shape_only_matches():
    df = pd.DataFrame({"code": ["12345678"] + [f"X{i}" for i in range(9)]})
    assert privacy.scan(df) == []


@pytest.fixture
def store(tmp_path):
    return KeyStore(tmp_path / "keys")


def test_pseudonymise_normalises_and_reports_invalid(store, rng):
    key = store.generate("bsn-test")
    bsn = make_bsn(rng)
    dotted = f"{bsn[:4]}.{bsn[4:6]}.{bsn[6:]}"
    bad = make_bsn(rng, valid=False)
    df = pd.DataFrame({"bsn": [bsn, dotted, bad, None], "x": [1, 2, 3, 4]})
    result = privacy.pseudonymise(df, {"bsn": "bsn"}, "bsn-test", keystore=store)
    expected = hmac.new(key.secret, bsn.encode(), hashlib.sha256).hexdigest()
    out = result.frame["bsn"]
    assert out.iloc[0] == expected and out.iloc[1] == expected
    assert pd.isna(out.iloc[2]) and pd.isna(out.iloc[3])
    assert result.report.invalid == {"bsn": [2]}
    assert result.report.key_id == key.key_id
    assert key.secret.hex() not in repr(result.report.as_dict())
    assert df["bsn"].iloc[0] == bsn  # the input is not changed
    assert result.frame["x"].tolist() == [1, 2, 3, 4]


def test_pseudonyms_differ_per_domain(store, rng):
    store.generate("a")
    store.generate("b")
    df = pd.DataFrame({"bsn": [make_bsn(rng)]})
    one = privacy.pseudonymise(df, ["bsn"], "a", keystore=store).frame["bsn"].iloc[0]
    two = privacy.pseudonymise(df, ["bsn"], "b", keystore=store).frame["bsn"].iloc[0]
    assert one != two and len(one) == 64


def test_parallel_hmac_matches_single(store):
    key = store.generate("par")
    values = [f"{i:09d}" for i in range(privacy.PARALLEL_THRESHOLD + 10)]
    assert privacy.hmac_many(key.secret, values, workers=2) == privacy.hmac_many(key.secret, values, workers=1)


def test_unknown_column_or_kind_is_user_error(store):
    store.generate("d")
    df = pd.DataFrame({"a": ["1"]})
    with pytest.raises(UserError, match="'b'"):
        privacy.pseudonymise(df, ["b"], "d", keystore=store)
    with pytest.raises(UserError, match="unknown identifier kind"):
        privacy.pseudonymise(df, {"a": "passport"}, "d", keystore=store)


def test_key_file_readable_by_others_is_refused(store):
    store.generate("open")
    store.path("open").chmod(0o644)
    with pytest.raises(KeyStoreError) as exc:
        store.load("open")
    assert "chmod 600" in exc.value.message and "0644" in exc.value.message


def test_keygen_never_overwrites(store):
    first = store.generate("once")
    with pytest.raises(KeyStoreError, match="already has a key"):
        store.generate("once")
    assert store.load("once").key_id == first.key_id


def test_key_store_inside_a_repository_is_refused(tmp_path):
    (tmp_path / "case").mkdir()
    (tmp_path / "case" / "case.yaml").write_text("id: x\n")
    with pytest.raises(KeyStoreError, match="outside any repository"):
        KeyStore(tmp_path / "case" / "keys").generate("k")


def test_missing_key_names_the_fix(store):
    with pytest.raises(KeyStoreError, match="idsp data keygen nope"):
        store.load("nope")


def test_large_digit_column_takes_the_integer_path_with_the_same_result(store, rng):
    """Above 100 000 rows plain digit columns are factorised as integers: same pseudonyms,
    same invalid rows as the general path, leading-zero variants linked."""
    key = store.generate("big")
    pool = [make_bsn(rng) for _ in range(2000)]
    values = [pool[rng.randrange(2000)] for _ in range(120_000)]
    zero = next(v for v in pool if v.startswith("0"))
    values[3] = zero[1:]  # Excel dropped the leading zero
    values[4] = zero
    values[5] = make_bsn(rng, valid=False)
    values[6] = None
    fast = privacy.pseudonymise(pd.DataFrame({"b": pd.Series(values, dtype="str")}), {"b": "bsn"}, "big", key=key)
    slow = privacy.pseudonymise(pd.DataFrame({"b": pd.Series(values, dtype=object)}), {"b": "bsn"}, "big", key=key)
    assert fast.frame["b"].tolist() == slow.frame["b"].tolist()
    assert fast.report.invalid == slow.report.invalid == {"b": [5]}
    assert fast.frame["b"].iloc[3] == fast.frame["b"].iloc[4]


def test_forked_workers_give_the_same_pseudonyms_as_one_process(store, rng):
    """Above PARALLEL_THRESHOLD distinct values the hashing is split over forked workers,
    for plain digit columns (packed bytes) and for other kinds (strings) alike."""
    key = store.generate("fork")
    count = privacy.PARALLEL_THRESHOLD + 1234
    kvk = pd.Series([f"{i:08d}" for i in range(10_000_000, 10_000_000 + count)], dtype="str")
    mail = pd.Series([f"p{i}@voorbeeld.nl" for i in range(count)], dtype="str")
    frame = pd.DataFrame({"kvk": kvk, "mail": mail})
    kinds = {"kvk": "kvk", "mail": "email"}
    one = privacy.pseudonymise(frame, kinds, "fork", key=key, workers=1).frame
    two = privacy.pseudonymise(frame, kinds, "fork", key=key, workers=2).frame
    for column in kinds:
        assert one[column].tolist() == two[column].tolist()
    last = count - 1
    assert two["kvk"].iloc[last] == hmac.new(key.secret, kvk.iloc[last].encode(), hashlib.sha256).hexdigest()
    assert two["mail"].iloc[last] == hmac.new(key.secret, mail.iloc[last].encode(), hashlib.sha256).hexdigest()


def test_pseudonym_column_is_an_arrow_string_column_with_missing_kept(store, rng):
    key = store.generate("arrow")
    values = [make_bsn(rng), None, make_bsn(rng, valid=False), make_bsn(rng)]
    out = privacy.pseudonymise(pd.DataFrame({"b": values}), {"b": "bsn"}, "arrow", key=key).frame["b"]
    assert out.dtype == "str"
    assert out.isna().tolist() == [False, True, True, False]
    assert out.iloc[3] == hmac.new(key.secret, values[3].encode(), hashlib.sha256).hexdigest()


def test_distinct_digit_column_skips_factorising_with_the_same_result(store, rng):
    """When the sample says nearly every value is distinct, each row is hashed as it is
    (no search for repeats): same pseudonyms and invalid rows as the general path, a
    string column, leading-zero variants still linked."""
    key = store.generate("distinct")
    values = list(dict.fromkeys(make_bsn(rng) for _ in range(130_000)))
    zero = next(v for v in values if v.startswith("0"))
    values[3] = zero[1:]  # the same BSN as `zero`, leading zero dropped by a spreadsheet
    values[5] = make_bsn(rng, valid=False)
    values[6] = None
    codes, per_row = pseudonyms._factorize(pd.Series(values, dtype="str"), "bsn")
    assert not per_row.distinct and len(per_row) == len(values) - 1  # the skip path: one entry per present row
    fast = privacy.pseudonymise(pd.DataFrame({"b": pd.Series(values, dtype="str")}), {"b": "bsn"}, "distinct",
                                key=key)
    slow = privacy.pseudonymise(pd.DataFrame({"b": pd.Series(values, dtype=object)}), {"b": "bsn"}, "distinct",
                                key=key)
    assert fast.frame["b"].dtype == "str"
    assert fast.frame["b"].fillna("").tolist() == slow.frame["b"].astype("str").fillna("").tolist()
    assert fast.report.invalid == slow.report.invalid == {"b": [5]}
    assert fast.frame["b"].iloc[3] == fast.frame["b"].loc[values.index(zero)]
    assert fast.report.pseudonymised == {"b": len(values) - 2}


def test_repeated_identifiers_come_back_as_categories(store, rng):
    key = store.generate("cat")
    pool = [make_bsn(rng) for _ in range(50)]
    values = [pool[i % 50] for i in range(1000)] + [None, make_bsn(rng, valid=False)]
    out = privacy.pseudonymise(pd.DataFrame({"b": values}), {"b": "bsn"}, "cat", key=key).frame["b"]
    assert out.dtype == "category" and len(out.cat.categories) == 50
    assert out.iloc[7] == hmac.new(key.secret, pool[7].encode(), hashlib.sha256).hexdigest()
    assert out.isna().sum() == 2
    # inputs that normalise alike share one category
    dotted = [f"{b[:4]}.{b[4:6]}.{b[6:]}" for b in pool]
    both = privacy.pseudonymise(pd.DataFrame({"b": pool * 2 + dotted * 2}), {"b": "bsn"}, "cat", key=key).frame["b"]
    assert len(both.cat.categories) == 50 and both.iloc[0] == both.iloc[100]


def test_mostly_distinct_estimate():
    import numpy as np

    gen = np.random.default_rng(7)
    assert pseudonyms._mostly_distinct(gen.permutation(1_000_000))
    assert not pseudonyms._mostly_distinct(gen.integers(0, 100_000, 1_000_000))  # 10 rows per value
    skewed = np.concatenate([np.zeros(300_000, dtype=np.int64), gen.permutation(700_000) + 1])
    assert not pseudonyms._mostly_distinct(skewed)  # one value in 30 % of the rows


def test_vectorised_digit_checks_agree_with_the_scalar_ones_on_odd_shapes(rng):
    bsn = make_bsn(rng)
    values = [bsn, f"{bsn[:4]}.{bsn[4:6]}.{bsn[6:]}", f"{bsn[:3]} {bsn[3:6]} {bsn[6:]}", "0" + bsn,  # 10 digits
              bsn[:8], "06" + bsn[:8], f"{bsn[:4]}-{bsn[4:]}", "12345678", "1234 5678", "123456789012"]
    series = pd.Series(values, dtype="str")
    for check in (privacy.is_bsn, privacy.is_kvk):
        assert check(series).tolist() == [check(v) for v in values], check.__name__


@pytest.mark.parametrize("values, kind", [(["1", "1"], "bsn"), (["", ""], "text"), ([None, None, None], "bsn"),
                                          ([], "kvk")])
def test_a_column_with_nothing_to_hash_comes_back_empty(store, values, kind):
    key = store.generate("leeg")
    frame = pd.DataFrame({"c": pd.Series(values, dtype=object, index=range(10, 10 + len(values)))})
    result = privacy.pseudonymise(frame, {"c": kind}, "leeg", key=key)
    assert result.frame["c"].isna().all() and list(result.frame.index) == list(frame.index)
    assert result.report.pseudonymised == {"c": 0}
    assert sum(result.report.invalid.get("c", [])) == sum(i for i, v in enumerate(values) if v is not None)
