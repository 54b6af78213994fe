/* exitcode.h: auditrun's exit codes, defined here only. The host uses them
 * for what it refuses before any Lua runs; the core hands them to Lua
 * (core.EXIT_*), where auditrun.task picks a run's code from how it ended.
 *
 * 0 success; 1 a run that failed or could not start; 2 a usage error;
 * 3 a run that finished without all it was asked for (incomplete);
 * 130 interrupted (Ctrl-C, SIGTERM). */
#ifndef AUDITRUN_EXITCODE_H
#define AUDITRUN_EXITCODE_H

#define AUDITRUN_EXIT_FAILURE 1
#define AUDITRUN_EXIT_USAGE 2
#define AUDITRUN_EXIT_INCOMPLETE 3
#define AUDITRUN_EXIT_INTERRUPTED 130

#endif
