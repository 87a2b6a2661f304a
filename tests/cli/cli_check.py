"""What several command-line checks share (Python standard library only; imported from this
folder, as st_reader): one list of failures, check() that records one, exit_if_failed() that
reports them, run() of a command and write_png()."""
import struct
import subprocess
import sys
import zlib

failures = []  # what went wrong, in order; the importing check prints it and exits non-zero


def check(cond, what):
    """Records `what` as a failure when `cond` is false; returns whether it held."""
    if not cond:
        failures.append(what)
    return bool(cond)


def exit_if_failed():
    """Prints every recorded failure and exits with status 1 when there is one."""
    if failures:
        print("FAILED:\n  " + "\n  ".join(failures))
        sys.exit(1)


def run(oodkit, *args, timeout=120):
    """Runs `oodkit args...` to the end: (exit status, stdout, stderr) as text."""
    p = subprocess.run([oodkit] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def write_png(path, w, h, seed):
    """An 8-bit RGB PNG of a pattern (standard library only)."""
    raw = b"".join(b"\x00" + bytes((x * 7 + y * 3 + seed * 11 + c * 50) % 256 for x in range(w) for c in range(3))
                   for y in range(h))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) +
                chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
