"""Secrets at rest: MultiFernet over ENCRYPTION_KEYS."""
from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

from shared import crypto


def with_keys(settings, *keys):
    return settings.replace(encryption_keys=tuple(keys))


@pytest.mark.fast
def test_round_trip_and_no_plaintext(settings):
    keyed = with_keys(settings, Fernet.generate_key().decode())
    token = crypto.encrypt("1//refresh-secret", keyed)
    assert "refresh-secret" not in token
    assert crypto.decrypt(token, keyed) == "1//refresh-secret"


@pytest.mark.fast
def test_old_keys_still_decrypt_and_rotate_moves_to_the_newest(settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    token = crypto.encrypt("secret", with_keys(settings, old))
    both = with_keys(settings, new, old)

    assert crypto.decrypt(token, both) == "secret"
    rotated = crypto.rotate(token, both)
    assert crypto.decrypt(rotated, with_keys(settings, new)) == "secret"
    with pytest.raises(crypto.DecryptionFailed):
        crypto.decrypt(rotated, with_keys(settings, old))


@pytest.mark.fast
def test_no_keys_refuses_to_encrypt_with_a_clear_error(settings):
    with pytest.raises(crypto.EncryptionNotConfigured, match="ENCRYPTION_KEYS is not set"):
        crypto.encrypt("secret", with_keys(settings))
    assert crypto.configured(with_keys(settings)) is False


@pytest.mark.fast
def test_a_malformed_key_is_refused_without_echoing_it(settings):
    with pytest.raises(crypto.EncryptionNotConfigured) as excinfo:
        crypto.encrypt("secret", with_keys(settings, "not-a-key-hunter2"))
    assert "hunter2" not in str(excinfo.value)


def test_keys_rotate_refuses_when_a_secret_cannot_be_opened_and_changes_nothing(user, monkeypatch):
    from click.testing import CliRunner

    from shared.cli import main
    from shared.db import session_scope
    from shared.models import GoogleIntegration
    from shared.settings import get_settings

    lost = Fernet.generate_key().decode()
    stored = Fernet(lost.encode()).encrypt(b"1//refresh").decode()
    with session_scope() as session:
        session.add(GoogleIntegration(user_id=user.id, refresh_token_encrypted=stored))
    monkeypatch.setenv("ENCRYPTION_KEYS", Fernet.generate_key().decode())  # the old key was dropped
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(main, ["keys", "rotate"])
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()

    assert result.exit_code == 1 and "cannot be decrypted" in result.output
    assert "1//refresh" not in result.output
    with session_scope() as session:
        assert session.scalar(select(GoogleIntegration.refresh_token_encrypted)) == stored


def test_keys_rotate_re_encrypts_webhook_secrets(user, monkeypatch):
    from click.testing import CliRunner

    from shared.cli import main
    from shared.db import session_scope
    from shared.models import Webhook
    from shared.settings import get_settings

    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    with session_scope() as session:
        session.add(Webhook(user_id=user.id, url="https://hooks.example/h", events=["job.failed"],
                            secret_encrypted=Fernet(old.encode()).encrypt(b"whsec_abc").decode()))
    monkeypatch.setenv("ENCRYPTION_KEYS", f"{new},{old}")
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(main, ["keys", "rotate"])
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()

    assert result.exit_code == 0, result.output
    with session_scope() as session:
        stored = session.scalar(select(Webhook.secret_encrypted))
    assert Fernet(new.encode()).decrypt(stored.encode()) == b"whsec_abc"
