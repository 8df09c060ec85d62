"""The original API's call styles (issue 11), for functions, module methods and c.call."""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import secrets
import threading
import time
import urllib.error
import urllib.request
from typing import Any

import pytest

import runhouse as rh
from runhouse.resources.object_ref import ObjectRef


def add(a: int, b: int) -> int:
    return a + b


def keywords(**kwargs: Any) -> list[str]:
    return sorted(kwargs)


def own_stream_logs(stream_logs: str = "the function's default") -> str:
    return stream_logs


async def double_later(x: int) -> int:
    await asyncio.sleep(0)
    return 2 * x


def fresh_token() -> str:
    return secrets.token_hex(8)


def spin_forever() -> None:
    while True:  # in Python code, so the timeout's cancellation stops it
        time.sleep(0.01)


def make_lock() -> Any:
    return threading.Lock()  # cannot be pickled: it can never pass through the client


def describe(value: Any) -> str:
    return type(value).__name__


def empty_list() -> list[int]:
    return []


def append_to(items: list[int], item: int) -> int:
    items.append(item)
    return len(items)


def nested_lengths(items: list[Any], more: dict[str, Any]) -> list[int]:
    return [len(items[0]), len(more["x"])]


def ref_key(value: Any) -> str:
    return str(value.key)


def count_of(counter: Any) -> tuple[str, int]:
    return type(counter).__name__, counter.count


class Account:
    """A plain class with every kind of member the issue names."""

    currency = "EUR"

    def __init__(self, balance: int = 0) -> None:
        self.balance = balance
        self.count = 0
        self._secret = "hidden"

    @classmethod
    def make_default(cls) -> Account:
        return cls(balance=100)

    @staticmethod
    def where() -> int:
        return os.getpid()

    def deposit(self, amount: int) -> int:
        self.balance += amount
        return self.balance

    def increment(self) -> int:
        self.count += 1
        return self.count

    async def later(self, x: int) -> int:
        await asyncio.sleep(0)
        return self.balance + x

    def _private_total(self) -> int:
        return self.balance * 2


class Named:
    """A class whose own constructor takes ``name``."""

    def __init__(self, name: str) -> None:
        self.name = name


class Ledger:
    """A class with no parameters."""


class Tracker(rh.Module):
    """An rh.Module subclass given its system at construction, as the original allowed."""

    def __init__(self, size: int, system: Any = None, env: Any = None) -> None:
        super().__init__(system=system, env=env)
        self.size = size

    def grow(self) -> int:
        self.size += 1
        return self.size


async def _awaited(awaitable: Any) -> Any:
    return await awaitable


# -- reserved keywords ----------------------------------------------------------------


def test_reserved_keywords_never_reach_the_function(cluster: rh.Cluster) -> None:
    fn = rh.function(keywords).to(cluster)
    assert fn(a=1, stream_logs=False, run_name=None, run_async=False, remote=False) == ["a"]


def test_stream_logs_is_the_clients_even_when_the_function_takes_it(
    cluster: rh.Cluster,
) -> None:
    fn = rh.function(own_stream_logs).to(cluster)
    assert fn(stream_logs=False) == "the function's default"


def test_run_async_makes_a_plain_function_awaitable(cluster: rh.Cluster) -> None:
    pending = rh.function(add).to(cluster)(1, 2, run_async=True)
    assert inspect.isawaitable(pending)
    assert asyncio.run(_awaited(pending)) == 3


def test_run_async_false_gives_an_async_functions_plain_result(cluster: rh.Cluster) -> None:
    assert rh.function(double_later).to(cluster)(4, run_async=False) == 8


def test_remote_true_returns_an_object_ref(cluster: rh.Cluster) -> None:
    ref = rh.function(add).to(cluster)(1, 2, remote=True)
    assert isinstance(ref, ObjectRef) and ref.fetch() == 3


# -- run names ------------------------------------------------------------------------


def test_run_name_is_the_run_key(cluster: rh.Cluster) -> None:
    fn = rh.function(add).to(cluster)
    assert fn.run(1, 2, run_name="nightly") == "nightly"
    assert fn.get("nightly") == 3
    assert cluster.get("nightly") == 3


def test_a_named_call_returns_its_result_and_keeps_it(cluster: rh.Cluster) -> None:
    assert rh.function(add).to(cluster)(2, 3, run_name="kept") == 5
    assert cluster.get("kept") == 5


def test_get_or_call_calls_once_then_returns_the_kept_result(cluster: rh.Cluster) -> None:
    fn = rh.function(fresh_token).to(cluster)
    first = fn.get_or_call("token_run")
    assert fn.get_or_call("token_run") == first
    assert fn.get_or_call("other_run") != first


def test_get_or_call_passes_positional_arguments_to_the_function(cluster: rh.Cluster) -> None:
    # The original's get_or_call(run_name, load=True, local=True, *args) took these two
    # positional arguments as load and local.
    assert rh.function(add).to(cluster).get_or_call("sum_run", 1, 2) == 3


# -- c.call ---------------------------------------------------------------------------


def test_cluster_call_in_the_original_spelling(cluster: rh.Cluster) -> None:
    rh.module(Account).to(cluster)(balance=1, name="acct")
    assert cluster.call("acct", "deposit", 2) == 3
    ref = cluster.call("acct", "deposit", 3, remote=True)
    assert isinstance(ref, ObjectRef) and ref.fetch() == 6
    assert asyncio.run(_awaited(cluster.call("acct", "deposit", 4, run_async=True))) == 10
    assert cluster.call("acct", "deposit", 5, run_name="deposited", stream_logs=False) == 15
    assert cluster.get("deposited") == 15


def test_cluster_call_passes_its_timeout_on(cluster: rh.Cluster) -> None:
    rh.function(spin_forever).to(cluster)
    with pytest.raises(rh.CallTimeoutError):
        cluster.call("spin_forever", "call", timeout=0.5)


def test_private_methods_are_callable_from_python(cluster: rh.Cluster) -> None:
    account = rh.module(Account).to(cluster)(balance=4, name="private_acct")
    assert account.call_method("_private_total") == 8
    assert cluster.call("private_acct", "_private_total") == 8


def test_private_names_stay_closed_over_plain_http(cluster: rh.Cluster) -> None:
    account = rh.module(Account).to(cluster)(balance=4, name="http_acct")
    request = urllib.request.Request(
        f"{account.endpoint()}/_private_total",
        data=json.dumps({"args": [], "kwargs": {}}).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {cluster.token()}"},
    )
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(request)
    assert "private" in raised.value.read().decode()


# -- ObjectRefs as arguments ----------------------------------------------------------


def test_a_ref_arrives_as_its_value_without_passing_through_here(cluster: rh.Cluster) -> None:
    lock = rh.function(make_lock).to(cluster).remote()
    assert rh.function(describe).to(cluster)(lock) == "lock"  # a lock never pickles


def test_a_ref_is_the_held_object_itself_not_a_copy(cluster: rh.Cluster) -> None:
    ref = rh.function(empty_list).to(cluster).remote()
    append = rh.function(append_to).to(cluster)
    assert append(ref, 1) == 1
    assert append(ref, item=2) == 2
    assert ref.fetch() == [1, 2]


def test_refs_inside_lists_and_dicts_arrive_as_values(cluster: rh.Cluster) -> None:
    ref = rh.function(fresh_token).to(cluster).remote()
    assert rh.function(nested_lengths).to(cluster)([ref], {"x": ref}) == [16, 16]


def test_refs_in_runs_and_maps_arrive_as_values(cluster: rh.Cluster) -> None:
    lock = rh.function(make_lock).to(cluster).remote()
    describer = rh.function(describe).to(cluster)
    assert describer.get(describer.run(lock)) == "lock"
    assert describer.map([lock, 1]) == ["lock", "int"]


def test_a_ref_held_by_another_env_arrives_as_its_value(cluster: rh.Cluster) -> None:
    other = rh.env(name="refs_other_env", env_vars={"SIDE": "other"})
    ref = rh.function(fresh_token).to(cluster, env=other).remote()
    assert rh.function(describe).to(cluster)(ref) == "str"


def test_a_ref_to_nothing_is_an_object_not_found_error(cluster: rh.Cluster) -> None:
    with pytest.raises(rh.ObjectNotFoundError, match="no_such_key"):
        rh.function(describe).to(cluster)(ObjectRef(cluster, "no_such_key"))


def test_a_ref_to_another_cluster_arrives_as_the_ref(cluster: rh.Cluster) -> None:
    elsewhere = rh.cluster(name="elsewhere", host="10.255.255.1", server_port=32300)
    foreign = ObjectRef(elsewhere, "far_key")
    assert rh.function(ref_key).to(cluster)(foreign) == "far_key"


def test_a_remote_instance_passed_to_its_cluster_is_the_instance(cluster: rh.Cluster) -> None:
    account = rh.module(Account).to(cluster)(name="passed_acct")
    account.increment()
    assert rh.function(count_of).to(cluster)(account) == ("Account", 1)


# -- modules --------------------------------------------------------------------------


def test_class_and_static_methods_run_on_the_remote_class(cluster: rh.Cluster) -> None:
    Remote = rh.module(Account).to(cluster)
    assert Remote.where() != os.getpid()
    assert Remote.make_default().balance == 100
    assert Remote.make_default.remote().fetch().balance == 100


def test_module_with_system_and_env_sends_at_once(cluster: rh.Cluster) -> None:
    env = rh.env(name="accounts_env", env_vars={"SIDE": "accounts"})
    account = rh.module(Account, system=cluster, env=env)(balance=2, name="at_once")
    assert account.deposit(1) == 3
    assert "at_once" in cluster.keys(env="accounts_env")


def test_subclass_given_its_system_sends_with_a_bare_to(cluster: rh.Cluster) -> None:
    tracker = Tracker(size=1, system=cluster)
    assert tracker.grow() == 2  # nothing was sent yet: this ran here
    remote = tracker.to(name="tracker")
    assert remote.grow() == 3 and tracker.size == 2


def test_subclass_get_or_to_keeps_what_the_cluster_holds(cluster: rh.Cluster) -> None:
    first = Tracker(size=10).get_or_to(cluster, name="kept_tracker")
    first.grow()
    again = Tracker(size=0).get_or_to(cluster, name="kept_tracker")
    assert again.remote.size == 11


def test_function_get_or_to_does_not_send_again(cluster: rh.Cluster) -> None:
    rh.function(add).get_or_to(cluster, name="combine")
    held = rh.function(keywords).get_or_to(cluster, name="combine")
    assert held(1, 2) == 3  # still add: keywords was not sent


def test_module_class_get_or_to_does_not_send_again(cluster: rh.Cluster) -> None:
    rh.module(Account).get_or_to(cluster, name="Bank")
    held = rh.module(Ledger).get_or_to(cluster, name="Bank")
    held(balance=1, name="from_bank")  # Ledger takes no balance: the cluster's is Account
    assert cluster.call("from_bank", "deposit", 1) == 2


def test_saved_function_and_module_load_by_positional_name(cluster: rh.Cluster) -> None:
    rh.function(add).to(cluster).save()
    assert rh.function("add")(2, 2) == 4
    rh.module(Account).to(cluster).save()
    assert rh.module("Account")(balance=7).deposit(1) == 8


def test_unnamed_saves_are_named_after_the_function_or_class(cluster: rh.Cluster) -> None:
    assert rh.function(add).to(cluster).save().name == "add"
    assert rh.module(Account).to(cluster).save().name == "Account"


def test_fetch_brings_the_whole_instance_or_one_attribute(cluster: rh.Cluster) -> None:
    account = rh.module(Account).to(cluster)(balance=5, name="fetched")
    account.deposit(1)
    here = account.fetch()
    assert isinstance(here, Account) and here.balance == 6
    assert account.fetch("_secret") == "hidden"


def test_private_attributes_read_and_write_through_remote(cluster: rh.Cluster) -> None:
    account = rh.module(Account).to(cluster)(name="secretive")
    assert account.remote._secret == "hidden"
    account.remote._secret = "changed"
    assert account.fetch("_secret") == "changed"


def test_fetch_and_set_async(cluster: rh.Cluster) -> None:
    account = rh.module(Account).to(cluster)(balance=3, name="async_attrs")
    asyncio.run(account.set_async("_secret", "async"))
    assert asyncio.run(account.fetch_async("_secret")) == "async"


def test_local_reads_the_local_object_without_a_call(cluster: rh.Cluster) -> None:
    remote = Tracker(size=1).to(cluster, name="local_tracker")
    remote.grow()
    assert remote.local.size == 1 and remote.remote.size == 2
    assert rh.module(Account).to(cluster)(name="acct_local").local.currency == "EUR"


def test_assigning_an_attribute_sets_it_remotely(cluster: rh.Cluster) -> None:
    account = rh.module(Account).to(cluster)(name="assigned")
    account.count = 5
    assert "count" not in vars(account)  # no silent local copy
    assert account.increment() == 6


def test_methods_have_remote_run_and_get(cluster: rh.Cluster) -> None:
    account = rh.module(Account).to(cluster)(balance=1, name="styled")
    ref = account.deposit.remote(2)
    assert isinstance(ref, ObjectRef) and ref.fetch() == 3
    key = account.deposit.run(3, run_name="deposit_run")
    assert key == "deposit_run" and account.deposit.get(key) == 6
    assert cluster.get(key) == 6


def test_methods_take_run_async_and_run_name(cluster: rh.Cluster) -> None:
    account = rh.module(Account).to(cluster)(balance=1, name="async_acct")
    assert asyncio.run(_awaited(account.deposit(1, run_async=True))) == 2
    assert account.later(1, run_async=False) == 3
    assert account.deposit(1, run_name="named_deposit") == 3
    assert cluster.get("named_deposit") == 3


def test_a_class_taking_name_gets_it_as_well_as_the_key(cluster: rh.Cluster) -> None:
    named = rh.module(Named).to(cluster)(name="bert")
    assert named.key == "bert" and named.remote.name == "bert"


def test_endpoints_in_the_original_spelling(cluster: rh.Cluster) -> None:
    fn = rh.function(add).to(cluster)
    assert f"{fn.endpoint()}/call" == fn.http_url()
    account = rh.module(Account).to(cluster)(name="reachable")
    assert account.endpoint() == f"{cluster.endpoint()}/reachable"
