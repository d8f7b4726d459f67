"""TLS and ACL users work through the client you pass; the library stays inside its prefix.

A throwaway redis-server (127.0.0.1, a port of 7100-7199) listens with TLS only (a
self-signed certificate made for the test) and has an ACL user allowed nothing but the
keys of one model (``Sec``, ``Sec:*``, ``Sec#*``) and no ``@dangerous`` command (so no
``KEYS``, ``FLUSHDB``...). Every public operation of every layout runs through
``redis.Redis.from_url("rediss://app:…@127.0.0.1:<port>/0")``: any key outside the
model's prefix, or any dangerous command, would fail with ``NOPERM``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest
import redis
from schematics import types

from redis_schematics import RangeIndex, UniqueIndex, transaction
from redis_schematics.exceptions import UniqueViolation
from tests.conftest import LAYOUTS
from tests.faults.servers import ThrowawayRedis

pytestmark = pytest.mark.real

PASSWORD = "s3cret-for-a-test"


def secure_model(base: type, client: redis.Redis, expire: int | None = None) -> type:
    return type(base)(
        "Sec",
        (base,),
        {
            "__redis_client__": client,
            "__expire__": expire,
            "__indexes__": ("flavour", RangeIndex("amount"), UniqueIndex("code")),
            "id": types.StringType(),
            "flavour": types.StringType(),
            "amount": types.IntType(),
            "code": types.StringType(),
        },
    )


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThrowawayRedis]:
    binary = shutil.which("redis-server")
    if binary is None or shutil.which("openssl") is None:
        if os.environ.get("REDIS_REQUIRED") == "1":
            pytest.fail("REDIS_REQUIRED=1 but redis-server or openssl is missing")
        pytest.skip("needs redis-server and openssl")
    server = ThrowawayRedis(binary, tmp_path_factory.mktemp("tls"), tls=True)
    try:
        server.start()
    except BaseException:
        server.stop()
        raise
    admin = server.client()
    admin.execute_command(
        "ACL", "SETUSER", "app", "on", f">{PASSWORD}", "resetkeys", "~Sec", "~Sec:*", "~Sec#*",
        "resetchannels", "+@all", "-@dangerous",
    )  # fmt: skip
    admin.close()
    yield server
    server.stop()


@pytest.mark.parametrize("layout_name", list(LAYOUTS))
@pytest.mark.parametrize("expire", [None, 600], ids=["lasting", "expiring"])
def test_every_operation_over_tls_as_an_acl_user_confined_to_the_prefix(
    tls_server: ThrowawayRedis, layout_name: str, expire: int | None
) -> None:
    url = f"rediss://app:{PASSWORD}@127.0.0.1:{tls_server.port}/0"
    client = redis.Redis.from_url(url, ssl_ca_certs=str(tls_server.cert), socket_timeout=10)
    try:
        assert client.acl_whoami() in ("app", b"app")
        # the ACL is real: a key outside the prefix, or a dangerous command, is refused
        with pytest.raises(redis.exceptions.NoPermissionError):
            client.set("Other", "1")
        with pytest.raises(redis.exceptions.NoPermissionError):
            client.keys("Sec*")

        model = secure_model(LAYOUTS[layout_name], client, expire)
        model.set_many(
            [model({"id": f"p{n}", "flavour": "mint", "amount": n, "code": f"c{n}"}) for n in range(5)]
        )
        model({"id": "v", "flavour": "vanilla", "amount": 50, "code": "cv"}).set()
        assert [o.id for o in model.filter(flavour="mint", amount__gte=3)] == ["p3", "p4"]
        assert model.count(flavour__in=["mint", "vanilla"]) == 6
        assert model.match(code="cv").id == "v"
        assert [o.id for o in model.query().order_by("-amount").limit(2)] == ["v", "p4"]
        model.update("p0", lambda o: setattr(o, "flavour", "lemon"))
        with pytest.raises(UniqueViolation):
            model({"id": "thief", "code": "c1"}).set()
        with transaction(client) as tx:
            model({"id": "t", "flavour": "mint", "code": "ct"}).set(pipeline=tx)
            model.delete_many(["p1"], pipeline=tx)
        assert model.delete_filter(flavour="lemon") == 1
        assert model.check_indexes() == []
        assert model.rebuild_indexes() == 0
        assert model.purge_expired() == 0
        assert sorted(o.id for o in model.all()) == ["p2", "p3", "p4", "t", "v"]
        assert model.delete_all() == 5
        assert model.count() == 0
    finally:
        admin = tls_server.client()
        admin.flushdb()
        admin.close()
        client.close()
