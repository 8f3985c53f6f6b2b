"""Certificates for the test servers' TLS listeners, made with `openssl` when it is there."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path


def make_certificates(directory: Path) -> tuple[Path, Path] | None:
    """A throwaway CA and a certificate for 127.0.0.1 that it signs, in `directory`: (a PEM
    file with the server's key and certificate, the CA file clients trust). None where
    `openssl` is missing: the callers then start no TLS listener."""
    openssl = shutil.which("openssl")
    if openssl is None:
        return None
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    for command in (
        ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
         "-days", "7", "-subj", "/CN=leadscore test CA"],
        ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
         "-subj", "/CN=127.0.0.1"],
        ["x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
         "-CAcreateserial", "-out", "server.crt", "-days", "7", "-extfile", "san.ext"],
    ):
        subprocess.run([openssl, *command], cwd=directory, check=True, capture_output=True)
    both = directory / "server.pem"
    both.write_text((directory / "server.key").read_text() + (directory / "server.crt").read_text())
    return both, directory / "ca.pem"
