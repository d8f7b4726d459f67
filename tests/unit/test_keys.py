"""Key formats, pinned as literal strings (walrus ``tests/models.py`` style).

These strings are the on-disk format: the object keys are those of redis-schematics
0.3.x, and everything the library adds lives under ``Prefix#``. Changing one of them
breaks existing data, so each is written out in full here.
"""

from __future__ import annotations

import fnmatch
from binascii import crc_hqx

import pytest

from redis_schematics.exceptions import ConfigurationError
from redis_schematics.keys import SLOTS, KeySpace, escape_glob, shard_spellings, slot_of


def redis_glob(pattern: str, name: str) -> bool:
    """Redis MATCH semantics for the patterns we build (``\\`` escapes, ``[...]`` classes)."""
    # fnmatch has no backslash escapes; translate ``\\x`` into ``[x]`` which it does know.
    out = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            nxt = pattern[i + 1]
            out.append("[[]" if nxt == "[" else f"[{nxt}]")
            i += 2
            continue
        out.append(c)
        i += 1
    return fnmatch.fnmatchcase(name, "".join(out))


# -- object keys (0.3.x format) ---------------------------------------------------------


def test_object_key_is_prefix_colon_pk() -> None:
    assert KeySpace("IceCream").object("1") == "IceCream:1"


def test_object_key_keeps_pk_verbatim() -> None:
    ks = KeySpace("IceCream")
    assert ks.object("a:b") == "IceCream:a:b"
    assert ks.object("*") == "IceCream:*"
    assert ks.object("[ab]") == "IceCream:[ab]"
    assert ks.object("with space") == "IceCream:with space"
    assert ks.object("sorvete-ç") == "IceCream:sorvete-ç"
    assert ks.object("{x}") == "IceCream:{x}"


@pytest.mark.parametrize("pk", ["1", "a:b", "::", "*", "[ab]", "x#y", "", "sorvete-ç"])
def test_pk_from_object_inverts_object(pk: str) -> None:
    ks = KeySpace("IceCream")
    assert ks.pk_from_object(ks.object(pk)) == pk


def test_model_hash_is_the_prefix() -> None:
    assert KeySpace("IceCream").model_hash() == "IceCream"


def test_model_hash_named_by_a_0_3_x_set_key() -> None:
    ks = KeySpace("IceCream", hash_key="IceCream:SubKey")
    assert ks.model_hash() == "IceCream:SubKey"
    assert ks.object("v1") == "IceCream:v1"  # the hash fields keep their names
    assert ks.members() == "IceCream#members"


@pytest.mark.parametrize("hash_key", ["", "Ice#Cream", "{IceCream}"])
def test_model_hash_name_is_checked(hash_key: str) -> None:
    with pytest.raises(ConfigurationError, match="__set_key__"):
        KeySpace("IceCream", hash_key=hash_key)


def test_model_hash_name_is_refused_in_a_tagged_key_space() -> None:
    with pytest.raises(ConfigurationError, match="__set_key__ cannot name the hash"):
        KeySpace("IceCream", tagged=True, hash_key="IceCream:SubKey")


# -- what the library adds ------------------------------------------------------------------


def test_members_key() -> None:
    assert KeySpace("IceCream").members() == "IceCream#members"


def test_equality_keys() -> None:
    ks = KeySpace("IceCream")
    assert ks.equality("flavour", "vanilla") == "IceCream#eq:flavour:vanilla"
    assert ks.equality("flavour", "") == "IceCream#eq:flavour:"
    assert ks.equality("flavour", "a:b") == "IceCream#eq:flavour:a:b"


def test_equality_key_for_none_differs_from_every_token() -> None:
    ks = KeySpace("IceCream")
    assert ks.equality("flavour", None) == "IceCream#eq:flavour#none"
    # the token "none" and the string "#none" are values, not None
    assert ks.equality("flavour", "none") == "IceCream#eq:flavour:none"
    assert ks.equality("flavour", "#none") == "IceCream#eq:flavour:#none"
    assert ks.equality("flavour", None) not in {ks.equality("flavour", t) for t in ("none", "#none", "")}


def test_range_and_unique_keys() -> None:
    ks = KeySpace("IceCream")
    assert ks.range("amount_kg") == "IceCream#range:amount_kg"
    assert ks.unique("code") == "IceCream#unique:code"


# -- hash tags and shards --------------------------------------------------------------------


def test_hash_tag_wraps_the_prefix() -> None:
    ks = KeySpace("IceCream", tagged=True)
    assert ks.base == "{IceCream}"
    assert ks.object("1") == "{IceCream}:1"
    assert ks.model_hash() == "{IceCream}"
    assert ks.members() == "{IceCream}#members"
    assert ks.equality("flavour", "vanilla") == "{IceCream}#eq:flavour:vanilla"
    assert ks.equality("flavour", None) == "{IceCream}#eq:flavour#none"
    assert ks.range("amount_kg") == "{IceCream}#range:amount_kg"
    assert ks.unique("code") == "{IceCream}#unique:code"
    assert ks.pk_from_object("{IceCream}:x:y") == "x:y"
    assert ks.slot() == slot_of("{IceCream}") == 15732


def test_a_slot_group_tags_with_the_group_and_keeps_the_prefix() -> None:
    order, shop = KeySpace("Order", True, "shop"), KeySpace("Shop", True, "shop")
    assert order.object("1") == "{shop}Order:1"
    assert order.members() == "{shop}Order#members"
    assert shop.members() == "{shop}Shop#members"
    assert order.pk_from_object("{shop}Order:a:b") == "a:b"
    assert order.slot() == shop.slot() == slot_of("{shop}")


def test_shard_forms() -> None:
    ks = KeySpace("IceCream", True).sharded("3")
    assert ks.object("1") == "{IceCream.3}:1"
    assert ks.members() == "{IceCream.3}#members"
    assert ks.range("a") == "{IceCream.3}#range:a"
    assert ks.pk_from_object("{IceCream.3}:p") == "p"
    grouped = KeySpace("Order", True, "shop").sharded("0")
    assert grouped.object("1") == "{shop.0}Order:1"


def test_shard_spellings_are_pinned() -> None:
    """A storage format: changing these moves every object of every sharded model."""
    assert shard_spellings("IceCream", 3) == ("0", "3", "2")
    assert shard_spellings("IceCream", 8) == ("1", "43", "0", "42", "3", "41", "2", "40")
    assert shard_spellings("shop", 4) == ("1", "0", "3", "2")
    assert shard_spellings("x", 1) == ("0",)


@pytest.mark.parametrize("n", [2, 3, 5, 16, 100])
def test_shards_fall_in_distinct_equal_ranges_of_the_slot_range(n: int) -> None:
    slots = [slot_of("{Model." + s + "}") for s in shard_spellings("Model", n)]
    for i, slot in enumerate(slots):
        assert i * SLOTS // n <= slot < (i + 1) * SLOTS // n


def test_slot_of_follows_the_cluster_rules() -> None:
    # the hash tag is the text between the first "{" and the next "}", if not empty
    assert slot_of("{user1000}.following") == slot_of("{user1000}.followers") == slot_of("user1000")
    assert slot_of("foo{}{bar}") == crc_hqx(b"foo{}{bar}", 0) % SLOTS
    assert slot_of("foo{{bar}}zap") == crc_hqx(b"{bar", 0) % SLOTS
    assert slot_of("x{a") == crc_hqx(b"x{a", 0) % SLOTS
    assert slot_of(b"{IceCream}:1") == slot_of("{IceCream}")


def test_default_is_no_hash_tag_and_no_shard() -> None:
    ks = KeySpace("IceCream")
    assert ks.base == "IceCream"
    assert (ks.tagged, ks.group, ks.shard, ks.slot()) == (False, None, None, None)


# -- prefixes that cannot work ------------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["Ice#Cream", "#", "{IceCream}", "Ice{Cream", "Ice}Cream"])
def test_reserved_characters_in_prefix_are_refused(prefix: str) -> None:
    with pytest.raises(ConfigurationError, match="__prefix__") as info:
        KeySpace(prefix)
    assert repr(prefix) in str(info.value)


@pytest.mark.parametrize("group", ["", "s#", "{shop}"])
def test_reserved_characters_in_a_group_are_refused(group: str) -> None:
    with pytest.raises(ConfigurationError, match="__hash_tag__"):
        KeySpace("Order", True, group)


def test_empty_prefix_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="non-empty"):
        KeySpace("")


def test_keyspace_is_frozen() -> None:
    ks = KeySpace("IceCream")
    with pytest.raises(AttributeError):
        ks.prefix = "Other"  # type: ignore[misc]


# -- glob escaping ----------------------------------------------------------------------------


def test_escape_glob_literals() -> None:
    assert escape_glob("plain") == "plain"
    assert escape_glob("a*b") == "a\\*b"
    assert escape_glob("a?b") == "a\\?b"
    assert escape_glob("[ab]") == "\\[ab\\]"
    assert escape_glob("a\\b") == "a\\\\b"
    assert escape_glob("a:b#c{d}") == "a:b#c{d}"


def test_patterns_literal() -> None:
    ks = KeySpace("IceCream")
    assert ks.object_pattern() == "IceCream:*"
    assert ks.meta_pattern() == "IceCream#*"
    assert ks.equality_pattern("flavour") == "IceCream#eq:flavour[:#]*"
    odd = KeySpace("A*b[c]?")
    assert odd.object_pattern() == "A\\*b\\[c\\]\\?:*"
    assert odd.meta_pattern() == "A\\*b\\[c\\]\\?#*"
    assert KeySpace("M", tagged=True).object_pattern() == "{M}:*"


@pytest.mark.parametrize("prefix", ["Mix", "A*", "A?", "[ab]", "back\\slash"])
def test_object_pattern_matches_only_own_objects(prefix: str) -> None:
    ks = KeySpace(prefix)
    pattern = ks.object_pattern()
    assert redis_glob(pattern, ks.object("1"))
    assert redis_glob(pattern, ks.object("*"))
    assert not redis_glob(pattern, ks.members())
    assert not redis_glob(pattern, ks.range("x"))
    assert not redis_glob(pattern, KeySpace(prefix + "Two").object("1"))
    assert not redis_glob(pattern, prefix)  # the Hash layout's own hash
    for other in ("Mix", "AB", "Ax", "a", "b", "back\\slash2"):
        if other != prefix:
            assert not redis_glob(pattern, KeySpace(other).object("1")), other


def test_meta_pattern_does_not_reach_a_longer_prefix() -> None:
    mix, mix_two = KeySpace("Mix"), KeySpace("MixTwo")
    assert redis_glob(mix.meta_pattern(), mix.members())
    assert not redis_glob(mix.meta_pattern(), mix_two.members())
    assert not redis_glob(mix.meta_pattern(), mix.object("#members"))


def test_equality_pattern_separates_fields_sharing_a_start() -> None:
    ks = KeySpace("IceCream")
    pattern = ks.equality_pattern("flavour")
    assert redis_glob(pattern, ks.equality("flavour", "vanilla"))
    assert redis_glob(pattern, ks.equality("flavour", None))
    assert not redis_glob(pattern, ks.equality("flavour_two", "vanilla"))
    assert not redis_glob(pattern, ks.equality("flavourx", None))
    assert not redis_glob(pattern, ks.range("flavour"))
