/* version.h: the one place auditrun's version is written. */
#ifndef AUDITRUN_VERSION
#define AUDITRUN_VERSION "0.1.0"
#endif
