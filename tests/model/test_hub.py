import pytest

from cxrbench.errors import CxrbenchError
from model import hub


def test_push_warns_about_the_data_use_agreement_and_uses_a_private_repo(tmp_path, monkeypatch, capsys):
    calls = {}

    class FakeApi:
        def create_repo(self, repo_id, private, exist_ok):
            calls["create"] = (repo_id, private)

        def upload_folder(self, folder_path, repo_id, commit_message):
            raise ConnectionError("offline")

    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    with pytest.raises(CxrbenchError, match="push to me/model failed.*checkpoint is safe"):
        hub.push_checkpoint(tmp_path, "me/model")
    assert calls["create"] == ("me/model", True)
    assert "Data Use Agreement" in capsys.readouterr().err
