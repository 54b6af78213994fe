"""Runs a command and prints its exit code, the CPU seconds (user + system)
and the peak RSS in KiB of it and its children: `make bench`'s meter for
whole runs.

The command runs under GNU time, so the numbers are the command's alone
(its CPU from wait4, its peak RSS from GNU time). Read from this process
instead, they were not: RUSAGE_CHILDREN kept the
CPU of whatever started this interpreter (a pyenv shim is two bash
scripts, some 55 ms), and a child forked from here starts its peak RSS at
this interpreter's (some 14 MiB). A command that starts with `python3`
runs this interpreter (sys.executable): the peer is Python, not Python
behind a launcher script.
"""
import os
import subprocess
import sys
import tempfile

cmd = sys.argv[1:]
if cmd and cmd[0] == "python3":
    cmd[0] = sys.executable
with tempfile.NamedTemporaryFile("r") as out:
    # CPU from wait4 (microseconds; GNU time's own adds well under a
    # millisecond), peak RSS from GNU time.
    child = subprocess.Popen(["/usr/bin/time", "-q", "-f", "%M", "-o", out.name] + cmd, stdout=subprocess.DEVNULL)
    _, status, ru = os.wait4(child.pid, 0)
    kib = out.read().split()[-1]
print("%d %.3f %d" % (os.waitstatus_to_exitcode(status), ru.ru_utime + ru.ru_stime, int(kib)))
