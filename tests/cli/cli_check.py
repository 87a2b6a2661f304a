"""What several command-line checks share (Python standard library only; imported from this
folder, as st_reader): one list of failures, check() that records one, and run() of a command."""
import subprocess

failures = []  # what went wrong, in order; the importing check prints it and exits non-zero


def check(cond, what):
    """Records `what` as a failure when `cond` is false; returns whether it held."""
    if not cond:
        failures.append(what)
    return bool(cond)


def run(oodkit, *args, timeout=120):
    """Runs `oodkit args...` to the end: (exit status, stdout, stderr) as text."""
    p = subprocess.run([oodkit] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=timeout)
    return p.returncode, p.stdout, p.stderr
