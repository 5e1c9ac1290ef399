"""config.py: precedence, validation errors (one line, exit 2 at the CLI), redaction, YAML profiles and SLOs."""

import pytest

from config import ConfigError, load_settings


def test_defaults_match_design_slos():
    settings = load_settings(env={})
    assert settings.profile == "artagent-v1"
    assert settings.slo_for("voice_loop").target == 700 and settings.slo_for("voice_loop").op == "<="
    assert settings.slo_for("ws_handshake").op == "<" and settings.slo_for("ws_handshake").target == 150
    assert settings.slo_for("success_rate").target == 95
    assert set(settings.profiles) >= {"artagent-v1", "rtmedagent", "twilio-media"}


def test_precedence_cli_over_env_over_yaml(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("test_duration: 10\nmax_users: 7\nprofile: rtmedagent\n")
    settings = load_settings({"profile": "twilio-media"}, env={"TEST_DURATION": "20"}, config_file=config)
    assert (settings.test_duration, settings.max_users, settings.profile) == (20, 7, "twilio-media")


def test_ws_base_url_derived_from_api_base():
    assert load_settings(env={"API_BASE_URL": "https://agent.example.com/"}).websocket_base_url == "wss://agent.example.com"
    explicit = load_settings(env={"API_BASE_URL": "https://a.example.com", "WS_BASE_URL": "wss://b.example.com"})
    assert explicit.websocket_base_url == "wss://b.example.com"


@pytest.mark.parametrize("overrides, env, fragment", [
    ({"profile": "nope"}, {}, "unknown profile 'nope'"),
    ({}, {"TEST_DURATION": "-5"}, "test_duration"),
    ({}, {"MAX_USERS": "many"}, "max_users"),
    ({}, {"API_BASE_URL": "ftp://x"}, "api_base_url"),
    ({}, {"WS_BASE_URL": "http://x"}, "ws_base_url"),
    ({}, {"REDIS_URL": "http://x"}, "redis_url"),
    ({"users": 50}, {"MAX_USERS": "10"}, "exceeds MAX_USERS"),
])
def test_invalid_values_give_one_line(overrides, env, fragment):
    with pytest.raises(ConfigError) as err:
        load_settings(overrides, env=env)
    assert fragment in str(err.value)
    assert "\n" not in str(err.value)


def test_bad_yaml_is_a_config_error(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("slo: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings(env={}, config_file=bad)
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(env={}, config_file=tmp_path / "missing.yaml")


def test_yaml_adds_a_profile_and_overrides_one_slo(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(
        "profile: mine\n"
        "profiles:\n  mine:\n    health: {path: /status}\n    media_ws: {path: /media, protocol: acs}\n"
        "    start_call: {path: /call, method: POST}\n"
        "slo:\n  - {metric: voice_loop, target: 900}\n"
    )
    settings = load_settings(env={}, config_file=config)
    assert settings.target_profile.health.path == "/status"
    assert "artagent-v1" in settings.profiles
    assert settings.slo_for("voice_loop").target == 900 and settings.slo_for("voice_loop").stat == "p95"
    assert settings.slo_for("ws_handshake").target == 150


def test_secrets_are_redacted():
    settings = load_settings(env={"OPENAI_API_KEY": "sk-very-secret", "COSMOS_KEY": "cosmos-secret==",
                                  "SPEECH_KEY": "speech-secret", "REDIS_URL": "rediss://:redis-pw@cache.example.com:6380/0"})
    printed = repr(settings.redacted()) + repr(settings)
    for secret in ("sk-very-secret", "cosmos-secret==", "speech-secret", "redis-pw"):
        assert secret not in printed
    assert settings.redacted()["redis_url"] == "rediss://***@cache.example.com:6380/0"
    assert settings.openai_api_key.get_secret_value() == "sk-very-secret"
