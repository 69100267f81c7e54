import gzip
import os

import pytest

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")


@pytest.fixture
def write(tmp_path):
    """write(name, content, gz=False) -> path: str content is UTF-8 encoded, bytes written as is."""

    def _write(name, content, gz=False):
        data = content.encode("utf-8") if isinstance(content, str) else content
        if gz:
            data = gzip.compress(data)
        path = tmp_path / name
        path.write_bytes(data)
        return str(path)

    return _write


@pytest.fixture(scope="session")
def huge_line_file(tmp_path_factory):
    """A file with a normal line, a 200 MB line without a newline inside it, then more lines.

    Written in 4 MB chunks so the test process never holds the line.
    """
    path = tmp_path_factory.mktemp("huge") / "huge.txt"
    chunk = b"x" * (4 << 20)
    with open(path, "wb") as f:
        f.write(b"first line is fine here\n")
        for _ in range(50):  # 200 MB
            f.write(chunk)
        f.write(b"\nthird line is fine too\nfourth line is also fine\n")
    yield str(path)
    os.remove(path)
