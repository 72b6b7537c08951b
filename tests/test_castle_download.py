"""utils.castle_path: castle.jpg fetched from a server on 127.0.0.1, sha256-checked, and never
a half-written or wrong file left in data/."""

import os
from pathlib import Path

import pytest
from local_http import QuietHandler, closed_url, serve

import utils


class HalfHandler(QuietHandler):
    """Announces the whole file but sends half of it, then hangs up (a dropped connection)."""

    def do_GET(self):
        data = Path(self.directory, "castle.jpg").read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data[: len(data) // 2])


@pytest.fixture
def server_dir(tmp_path):
    folder = tmp_path / "server"
    folder.mkdir()
    return folder


@pytest.fixture
def dest(tmp_path):
    return tmp_path / "data" / "castle.jpg"  # data/ does not exist yet


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_download_checks_hash_and_returns_path(castle_file, server_dir, dest):
    (server_dir / "castle.jpg").write_bytes(castle_file.read_bytes())
    with serve(server_dir) as base:
        path = utils.castle_path(url=f"{base}/castle.jpg", dest=dest)
    assert path == dest
    assert utils.sha256(path) == utils.CASTLE_SHA256
    assert leftovers(dest.parent) == ["castle.jpg"]  # no .part file beside it
    assert utils.load_image(path).shape == (224, 224, 3)


def test_existing_good_file_needs_no_network(castle_file, tmp_path):
    dest = tmp_path / "castle.jpg"
    dest.write_bytes(castle_file.read_bytes())
    assert utils.castle_path(url=closed_url("castle.jpg"), dest=str(dest)) == dest


def test_wrong_content_is_refused_and_not_kept(server_dir, dest):
    (server_dir / "castle.jpg").write_bytes(b"<html>a captive portal page</html>")
    with serve(server_dir) as base:
        url = f"{base}/castle.jpg"
        with pytest.raises(RuntimeError) as info:
            utils.castle_path(url=url, dest=dest)
    message = str(info.value)
    assert f"the file downloaded from {url} has the wrong sha256" in message
    assert utils.CASTLE_SHA256 in message  # says which file to copy in by hand
    assert leftovers(dest.parent) == []


def test_dropped_connection_leaves_no_partial_file(castle_file, server_dir, dest):
    (server_dir / "castle.jpg").write_bytes(castle_file.read_bytes())
    with serve(server_dir, handler=HalfHandler) as base:
        with pytest.raises(RuntimeError, match="Could not fetch castle.jpg"):
            utils.castle_path(url=f"{base}/castle.jpg", dest=dest)
    assert leftovers(dest.parent) == []


def test_missing_on_server_gives_clear_error(server_dir, dest):
    with serve(server_dir) as base:
        with pytest.raises(RuntimeError, match="Could not fetch castle.jpg .*404"):
            utils.castle_path(url=f"{base}/castle.jpg", dest=dest)
    assert leftovers(dest.parent) == []


def test_server_down_gives_clear_error(dest):
    with pytest.raises(RuntimeError) as info:
        utils.castle_path(url=closed_url("castle.jpg"), dest=dest)
    message = str(info.value)
    assert "Could not fetch castle.jpg" in message
    assert "refused" in message.lower()  # the reason is passed on
    assert f"into {dest.parent}" in message and "check your internet connection" in message
    assert leftovers(dest.parent) == []


def test_existing_wrong_file_is_refused_and_untouched(tmp_path):
    dest = tmp_path / "castle.jpg"
    dest.write_bytes(b"my own picture")
    os.utime(dest, (1_000_000_000, 1_000_000_000))
    with pytest.raises(ValueError, match="is not the pinned castle.jpg .*left as it is"):
        utils.castle_path(url=closed_url("castle.jpg"), dest=dest)
    assert dest.read_bytes() == b"my own picture"
    assert dest.stat().st_mtime == 1_000_000_000
    assert leftovers(tmp_path) == ["castle.jpg"]
