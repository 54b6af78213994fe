"""Runs a command and prints the CPU seconds (user + system) and the peak
RSS in KiB of it and its children: `make bench`'s meter for whole runs."""
import resource
import subprocess
import sys

code = subprocess.call(sys.argv[1:], stdout=subprocess.DEVNULL)
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
print("%d %.3f %d" % (code, ru.ru_utime + ru.ru_stime, ru.ru_maxrss))
