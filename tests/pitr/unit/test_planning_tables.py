"""A filtered point-in-time restore's plan (planning/tables.py): the rules, what BR is sent, what is restored, what
the target must not hold, and when two restores may share a target."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tidb_pitr.planning import PlanError
from tidb_pitr.planning.drill import select_tables
from tidb_pitr.planning.tables import (
    br_filter,
    check_version,
    concurrent_refusal,
    match_schema,
    parse_rules,
    plan_tables,
    release_version,
)

SOURCE = ["shop.orders", "shop.customers", "crm.accounts", "crm.events"]
names = st.sampled_from(["shop", "crm", "mysql", "sys", "test", "Shop"])
tables = st.sampled_from(["orders", "customers", "accounts", "user", "events"])
patterns = st.sampled_from(["*", "shop", "crm", "mysql", "s*", "?ys", "[cs]*"])
rules = st.lists(st.tuples(st.booleans(), patterns, st.sampled_from(["*", "orders", "user", "o*"])).map(
    lambda r: f"{'!' if r[0] else ''}{r[1]}.{r[2]}"), min_size=1, max_size=4)


def test_the_field_takes_a_list_or_lines_and_refuses_what_is_not_a_rule_naming_it():
    assert parse_rules(None) == [] and parse_rules("") == [] and parse_rules([]) == []
    assert parse_rules("shop.orders,\n crm.* ") == ["shop.orders", "crm.*"]
    assert parse_rules(["shop.orders", " "]) == ["shop.orders"]
    for bad, says in ((["orders"], "'orders' must be 'db.table'"), (["!shop.tmp"], "only excludes"),
                      (7, "tables must be a list"), ([1], "list of strings")):
        with pytest.raises(PlanError, match=says) as refused:
            parse_rules(bad)
        assert str(refused.value).startswith("tables")


def test_versions_below_v855_are_refused_with_the_reason():
    assert release_version("8.0.11-TiDB-v8.5.5") == (8, 5, 5) and release_version("v8.1.2") == (8, 1, 2)
    assert release_version("nightly") is None
    with pytest.raises(PlanError, match=r"runs TiDB v8\.1\.2: a point-in-time restore of chosen tables needs BR "
                                        r"v8\.5\.5 or later"):
        check_version((8, 1, 2), "ns/target")
    assert "supported" in check_version((8, 5, 5), "ns/target")
    assert check_version(None, "ns/target").startswith("WARNING")


@given(rules, st.lists(st.tuples(names, tables).map(".".join), max_size=8))
def test_br_gets_a_filter_it_accepts_that_selects_the_same_tables(user_rules, tables_seen):
    sent = br_filter(user_rules)
    # BR refuses a PITR filter that may take mysql or sys; what it restores is what the user's rules select.
    assert select_tables(tables_seen, sent) == select_tables(tables_seen, user_rules)
    assert not any(db in ("mysql", "sys") for db in (t.split(".")[0].lower() for t in select_tables(tables_seen, sent)))
    assert not match_schema(sent, "mysql") and not match_schema(sent, "sys")


@given(rules, st.lists(st.tuples(names, tables).map(".".join), max_size=6))
def test_a_target_holding_a_selected_table_is_refused_naming_it(user_rules, target):
    clash = select_tables(target, user_rules)
    if clash:
        with pytest.raises(PlanError, match="the target already holds " + ", ".join(clash).replace(".", r"\.")):
            plan_tables(user_rules, None, target)
    else:
        planned = plan_tables(user_rules, None, target)
        assert not planned.listed and list(planned.restored) == user_rules


def test_restored_tables_come_from_the_source_at_t_and_a_filter_matching_none_is_refused():
    planned = plan_tables(["shop.orders"], SOURCE, ["crm.accounts", "shop.customers", "crm"])
    assert planned.restored == ("shop.orders",) and planned.listed and planned.table_filter == ("shop.orders",)
    assert plan_tables(["*.orders"], SOURCE, []).table_filter == ("*.orders", "!mysql.*", "!sys.*")
    with pytest.raises(PlanError, match=r"tables \['shop\.order'\] matches no table of the source"):
        plan_tables(["shop.order"], SOURCE, [])
    with pytest.raises(PlanError, match=r"already holds shop\.orders"):
        plan_tables(["shop.*", "!shop.customers"], SOURCE, ["shop.orders", "shop.customers"])


def test_only_v9_runs_filtered_restores_of_disjoint_tables_side_by_side():
    orders = plan_tables(["shop.orders"], SOURCE, [])
    assert concurrent_refusal((8, 5, 5), orders, []) is None
    assert "in progress: r1" in (concurrent_refusal((8, 5, 5), orders, [("r1", ["crm.*"])]) or "")
    assert concurrent_refusal((9, 0, 0), orders, [("r1", ["crm.*", "!mysql.*"])]) is None
    assert "of shop.orders" in (concurrent_refusal((9, 0, 0), orders, [("r1", ["shop.*"])]) or "")
    assert "whole-cluster" in (concurrent_refusal((9, 0, 0), orders, [("r1", [])]) or "")
    assert concurrent_refusal((9, 0, 0), None, [("r1", ["crm.*"])]) is not None  # we are whole-cluster
    unlisted = plan_tables(["shop.orders"], None, [])
    assert concurrent_refusal((9, 0, 0), unlisted, [("r1", ["crm.*"])]) is not None  # disjoint not known
