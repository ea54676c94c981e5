"""The services a deployment runs are never open: the Redis broker answers only clients with its
password, and the Celery settings take the broker's URL from the environment, not from the file
every machine copies."""

import pytest
import yaml

from clustering_dag.settings import PROJECT_ROOT
from clustering_dag_tests.services import redis_server

pytestmark = pytest.mark.services


def test_the_broker_refuses_a_client_without_the_password():
    import redis

    with redis_server() as url:
        assert redis.Redis.from_url(url, socket_timeout=5).ping()
        host_port = url.rsplit("@", 1)[1]
        anonymous = redis.Redis.from_url(f"redis://{host_port}", socket_timeout=5)
        with pytest.raises(redis.exceptions.AuthenticationError):
            anonymous.ping()
        wrong = redis.Redis.from_url(f"redis://:not-the-password@{host_port}", socket_timeout=5)
        with pytest.raises((redis.exceptions.AuthenticationError, redis.exceptions.ResponseError)):
            wrong.ping()


def test_the_celery_settings_hold_no_address_and_no_credentials():
    config = yaml.safe_load((PROJECT_ROOT / "clustering_dag/deploy/celery.yaml").read_text())
    execution = config["execution"]["config"]
    assert execution["broker"] == {"env": "CLUSTERING_DAG_BROKER_URL"}
    assert execution["backend"] == {"env": "CLUSTERING_DAG_RESULT_BACKEND"}
