/* err.h -- error codes and the caller-owned error buffer used by every module
 */
#ifndef PRESENCE_ERR_H
#define PRESENCE_ERR_H

#include <stddef.h>

/* Return codes. 0 is success; every failure is negative. Callers decide what
 * to do from the code alone, never from the message text. */
enum {
    PI_OK = 0,
    PI_EINVAL = -1,  /* bad argument, option or configuration value */
    PI_ERETRY = -2,  /* transient: back off and try the same thing again */
    PI_EFATAL = -3,  /* permanent: stop */
    PI_EDATA = -4,   /* the data was refused (SQLSTATE class 22/23): split it */
    PI_ESCHEMA = -5, /* the database schema is older than this build needs */
    PI_EBEHIND = -6  /* the database is behind positions believed stored */
};

#define PI_ERR_MSG_MAX 512

/* A one-line error: the code and a message. Owned by the caller, filled by
 * the callee that failed; the first failure wins (context is added where the
 * error is logged, not on the way up). */
typedef struct pi_err {
    int code;
    char msg[PI_ERR_MSG_MAX];
} pi_err;

#define PI_MUST_CHECK __attribute__((warn_unused_result))

/* Clear err (code 0, empty message). */
void pi_err_clear(pi_err *err);

/* Set err to code and a printf-formatted message; newlines in the message
 * are replaced by spaces so that it stays one line. Returns code so that a
 * caller can write `return pi_err_set(err, PI_EINVAL, "...")`. */
int pi_err_set(pi_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A short name for a code ("retry", "fatal", ...). */
const char *pi_err_code_name(int code);

#endif
