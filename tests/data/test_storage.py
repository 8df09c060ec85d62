"""The storage systems against real servers: the conformance suite over local disk, S3
(moto), GCS (the emulator) and Azure Blob (Azurite); credentials from the environment or
from data_config alone; the registry's errors for unknown systems and missing libraries."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from runhouse.data import registry
from runhouse.data.storage import Storage, storage_for
from runhouse.data.systems.azure import AzureStorage
from runhouse.data.systems.gcs import GCSStorage
from runhouse.data.systems.s3 import S3Storage
from runhouse.exceptions import StorageError
from tests.conformance.storage_suite import Faults, StorageConformance
from tests.sshd import free_port
from tests.storage_servers import AZURITE_KEY, Service, StorageServer, point_at


class TestLocalStorage(StorageConformance):
    @pytest.fixture
    def storage(self) -> Storage:
        return storage_for("file")

    @pytest.fixture
    def root(self, tmp_path: Path) -> str:
        (tmp_path / "root").mkdir()
        return str(tmp_path / "root")

    @pytest.fixture
    def faults(self) -> Faults:
        return Faults()  # no buckets, credentials or endpoints on local disk


class TestS3Storage(StorageConformance):
    @pytest.fixture
    def storage(self, s3: Service) -> Storage:
        return storage_for("s3")  # found through AWS_* alone, as a user would set them

    @pytest.fixture
    def root(self, s3: Service) -> str:
        return f"{s3.bucket()}/root"

    @pytest.fixture
    def faults(self, s3: Service, monkeypatch: pytest.MonkeyPatch) -> Faults:
        def no_credentials() -> Storage:
            monkeypatch.delenv("AWS_ACCESS_KEY_ID")
            monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
            return storage_for("s3")

        closed = f"http://127.0.0.1:{free_port()}"
        no_retries = {"retries": {"max_attempts": 1}}  # botocore would retry for ~4 s
        return Faults(
            missing_bucket="rh-no-such-bucket/a/b.txt",
            no_credentials=no_credentials,
            unreachable=lambda: storage_for(
                "s3", {"endpoint_url": closed, "config_kwargs": no_retries}
            ),
        )  # moto accepts any key: wrong credentials cannot be shown


class TestGCSStorage(StorageConformance):
    @pytest.fixture
    def storage(self, gcs: Service) -> Storage:
        return storage_for("gs")  # STORAGE_EMULATOR_HOST: anonymous, project "test"

    @pytest.fixture
    def root(self, gcs: Service) -> str:
        return f"{gcs.bucket()}/root"

    @pytest.fixture
    def faults(self, gcs: Service, monkeypatch: pytest.MonkeyPatch) -> Faults:
        def no_credentials() -> Storage:
            monkeypatch.delenv("STORAGE_EMULATOR_HOST")  # and HOME holds no gcloud login
            return storage_for("gs")

        # The emulator checks no credentials; gcsfs retries a closed port for ~34 s.
        return Faults(missing_bucket="rh-no-such-bucket/a/b.txt", no_credentials=no_credentials)


class TestAzureStorage(StorageConformance):
    @pytest.fixture
    def storage(self, azure: Service) -> Storage:
        return storage_for("azure")  # AZURE_STORAGE_CONNECTION_STRING

    @pytest.fixture
    def root(self, azure: Service) -> str:
        return f"{azure.bucket()}/root"

    @pytest.fixture
    def faults(self, azure: Service, monkeypatch: pytest.MonkeyPatch) -> Faults:
        def no_credentials() -> Storage:
            monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING")
            return storage_for("azure")

        wrong_key = "A" * 86 + "=="
        connection = azure.options["connection_string"].replace(AZURITE_KEY, wrong_key)
        return Faults(
            missing_bucket="rh-no-such-bucket/a/b.txt",
            no_credentials=no_credentials,
            wrong_credentials=(
                lambda: storage_for("azure", {"connection_string": connection}),
                wrong_key,
            ),
        )  # azure-core retries a closed port for ~80 s


@pytest.mark.parametrize("system", ["s3", "gcs", "azure"])
def test_data_config_alone_reaches_the_service(
    system: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = request.getfixturevalue(f"{system}_server")
    point_at(monkeypatch, system, {})  # nothing in the environment
    bucket = Service(server).bucket()
    storage = storage_for(system, server.options)
    storage.write_bytes(f"{bucket}/k", b"v")
    assert storage.read_bytes(f"{bucket}/k") == b"v"


def test_a_server_leaves_the_environment_to_the_tests_that_ask(
    s3_server: StorageServer, gcs_server: StorageServer, azure_server: StorageServer
) -> None:
    own_default = "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT"  # the gs system sets it for the process
    for server in (s3_server, gcs_server, azure_server):
        for name, value in server.env.items():
            assert name == own_default or os.environ.get(name) != value


def test_data_config_goes_over_the_environment(
    azure: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    right = azure.options["connection_string"]
    monkeypatch.setenv(
        "AZURE_STORAGE_CONNECTION_STRING", right.replace(AZURITE_KEY, "A" * 86 + "==")
    )
    bucket = azure.bucket()
    storage = storage_for("azure", {"connection_string": right})
    storage.write_bytes(f"{bucket}/k", b"v")
    assert storage.ls(bucket) == [f"{bucket}/k"]


def test_credentials_stay_out_of_reprs() -> None:
    storages = [
        S3Storage({"key": "AKIDSECRETKEY", "secret": "s3cr3t-value"}),
        AzureStorage({"connection_string": "AccountKey=s3cr3t-value;"}),
        GCSStorage({"token": "s3cr3t-value"}),
    ]
    for storage in storages:
        assert "s3cr3t" not in repr(storage) and "AKIDSECRETKEY" not in repr(storage)


@pytest.mark.parametrize(
    ("scheme", "given", "normal"),
    [
        ("s3", "s3://bucket/a/b/", "bucket/a/b"),
        ("s3", "s3a://bucket/a", "bucket/a"),
        ("s3", "bucket/a", "bucket/a"),
        ("gs", "gs://bucket/a/", "bucket/a"),
        ("gs", "gcs://bucket", "bucket"),
        ("azure", "az://container/a", "container/a"),
        ("azure", "abfs://container/a/", "container/a"),
        ("file", "file:///tmp/x/", "/tmp/x"),
    ],
)
def test_normalize_accepts_the_url_forms(scheme: str, given: str, normal: str) -> None:
    assert storage_for(scheme).normalize(given) == normal


@pytest.mark.parametrize(
    ("alias", "cls"), [("gcs", GCSStorage), ("az", AzureStorage), ("abfs", AzureStorage)]
)
def test_aliases_name_the_same_system(alias: str, cls: type[Storage]) -> None:
    assert registry.system_class(alias) is cls


def test_an_unknown_system_lists_the_known_ones() -> None:
    with pytest.raises(
        StorageError, match="unknown storage system; use one of azure, file, gs, s3"
    ):
        registry.system_class("ftp")


def test_a_system_whose_module_cannot_import_names_the_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    target = "tests.data.absent_library_system:AbsentStorage"
    monkeypatch.setitem(registry.SYSTEMS, "absent", (target, "pip install 'runhouse[absent]'"))
    with pytest.raises(StorageError) as info:
        registry.system_class("absent")
    assert "runhouse_absent_storage_library" in str(info.value)
    assert "pip install 'runhouse[absent]'" in str(info.value)


def test_a_library_missing_at_first_use_names_the_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "s3fs", None)  # as if s3fs were not installed
    storage = storage_for("s3")
    with pytest.raises(StorageError) as info:
        storage.ls("bucket/a")
    assert (info.value.system, info.value.path) == ("s3", "bucket/a")
    assert "s3fs" in str(info.value) and "pip install 'runhouse[s3]'" in str(info.value)


def test_a_client_is_shared_until_options_or_environment_change(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    point_at(monkeypatch, "s3", {"AWS_ACCESS_KEY_ID": "one", "AWS_SECRET_ACCESS_KEY": "x"})
    first = storage_for("s3").fs
    assert storage_for("s3").fs is first
    assert storage_for("s3", {"endpoint_url": "http://127.0.0.1:1"}).fs is not first
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "two")
    assert storage_for("s3").fs is not first
